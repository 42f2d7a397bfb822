"""Every chart and third-party image version the cluster stacks install, pinned in one place.

Bump a version here and nowhere else; `lab render` and the tests pick it up. Each pin says why it is that one.
"""

from __future__ import annotations

from dataclasses import dataclass


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

IMAGES: dict[str, str] = {
    # 24.10 ships Triton 2.51, the same server the local platform runs from nvidia-pytriton 0.7.0.
    "tritonserver": "nvcr.io/nvidia/tritonserver:24.10-py3",
    # 4.x exporter for DCGM 4 (H100/H200 profiling metrics), serves :9400/metrics.
    "dcgm-exporter": "nvcr.io/nvidia/k8s/dcgm-exporter:4.1.1-4.0.4-ubuntu22.04",
    # base image with nvidia-smi injected by the container toolkit; 12.6 runs on drivers >= 560.
    "cuda-base": "nvcr.io/nvidia/cuda:12.6.3-base-ubuntu24.04",
    "redis": "docker.io/library/redis:7.4.2-alpine",
    "fluent-bit": "cr.fluentbit.io/fluent/fluent-bit:3.2.4",
    "prometheus": "quay.io/prometheus/prometheus:v2.55.1",
    "jaeger": "docker.io/jaegertracing/all-in-one:1.64.0",
    # kind node image matching the Kubernetes version the manifests are validated against.
    "kind-node": "kindest/node:v1.31.4",
}

# Kubernetes versions the rendered manifests are validated against (kubernetes-validate, strict).
K8S_VALIDATE_VERSIONS = ("1.30",)
