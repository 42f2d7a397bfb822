"""Every chart version the cluster stacks install, pinned in one place (images: ailab/contract/facts/images.yaml).

Bump a version here and nowhere else; `lab render` and the tests pick it up. Each pin says why it is that one.
"""

from __future__ import annotations

from dataclasses import dataclass

from ailab.contract import facts


@dataclass(frozen=True)
class Chart:
    """A Helm chart: name, pinned version and the repository it comes from."""

    chart: str
    version: str
    repo: str


CHARTS: dict[str, Chart] = {
    # 0.17.x: sharing.mps (MPS control daemon) and per-node configs through nvidia.com/device-plugin.config.
    "nvidia-device-plugin": Chart("nvidia-device-plugin", "0.17.1", "https://nvidia.github.io/k8s-device-plugin"),
    # v25.3: devicePlugin.config, migManager.config and cdi.enabled as used below; supports driver/toolkit off.
    "gpu-operator": Chart("gpu-operator", "v25.3.0", "https://helm.ngc.nvidia.com/nvidia"),
    # 67.x: Prometheus operator CRDs v0.79, *SelectorNilUsesHelmValues and Thanos sidecar values.
    "kube-prometheus-stack": Chart(
        "kube-prometheus-stack", "67.9.0", "https://prometheus-community.github.io/helm-charts"
    ),
    # 4.11: rules.custom for the Triton queue-time metric served through custom.metrics.k8s.io.
    "prometheus-adapter": Chart("prometheus-adapter", "4.11.0", "https://prometheus-community.github.io/helm-charts"),
    # 15.x: query + storegateway + bundled MinIO as the object store for a lab.
    "thanos": Chart("thanos", "15.9.2", "https://charts.bitnami.com/bitnami"),
    # 2.16: ScaledObject keda.sh/v1alpha1 with the prometheus trigger.
    "keda": Chart("keda", "2.16.1", "https://kedacore.github.io/charts"),
    # 1.24: Istio networking/security v1 APIs (VirtualService, DestinationRule, Gateway, RequestAuthentication).
    "istio-base": Chart("base", "1.24.2", "https://istio-release.storage.googleapis.com/charts"),
    "istiod": Chart("istiod", "1.24.2", "https://istio-release.storage.googleapis.com/charts"),
    # the CNI node agent replaces the NET_ADMIN istio-init container, so meshed namespaces can stay restricted.
    "istio-cni": Chart("cni", "1.24.2", "https://istio-release.storage.googleapis.com/charts"),
    "istio-ingress": Chart("gateway", "1.24.2", "https://istio-release.storage.googleapis.com/charts"),
    # 7.7: Argo CD 2.13 with argoproj.io/v1alpha1 Application.
    "argo-cd": Chart("argo-cd", "7.7.11", "https://argoproj.github.io/argo-helm"),
    # 1.16: crds.enabled (replaces installCRDs); self-signed and CA issuers.
    "cert-manager": Chart("cert-manager", "v1.16.2", "https://charts.jetstack.io"),
    # 0.111: mode=deployment with an OTLP pipeline exported to Jaeger.
    "opentelemetry-collector": Chart(
        "opentelemetry-collector", "0.111.2", "https://open-telemetry.github.io/opentelemetry-helm-charts"
    ),
    # 9.43: Cluster Autoscaler 1.31 with autoDiscovery for aws/gce/azure.
    "cluster-autoscaler": Chart("cluster-autoscaler", "9.43.2", "https://kubernetes.github.io/autoscaler"),
}

# Third-party images, pinned (each with why) in ailab/contract/facts/images.yaml beside the lab's own images:
# the operator's controller reads the same Triton pin.
IMAGES: dict[str, str] = dict(facts.images().third_party)

# Kubernetes versions the rendered manifests are validated against (kubernetes-validate, strict).
K8S_VALIDATE_VERSIONS = ("1.30",)
