"""Plain data the components are made of: manifest dicts, Helm releases and per-component plans.

Pure functions in each concern module return a `Plan`; `stack.py` turns plans into Pulumi resources and
`render.py` into YAML, so `pulumi up`, `lab render` and the tests share one definition.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ailab.platform.versions import CHARTS, Chart

Manifest = dict[str, Any]

# API groups of custom resources -> the Helm release (plan key) whose chart installs their CRDs.
CRD_PROVIDERS: dict[str, str] = {
    "monitoring.coreos.com": "kube-prometheus-stack",
    "networking.istio.io": "istio-base",
    "security.istio.io": "istio-base",
    "argoproj.io": "argo-cd",
    "keda.sh": "keda",
    "cert-manager.io": "cert-manager",
}
CORE_GROUPS = frozenset(
    {
        "",
        "apps",
        "batch",
        "policy",
        "autoscaling",
        "scheduling.k8s.io",
        "networking.k8s.io",
        "rbac.authorization.k8s.io",
        "apiextensions.k8s.io",
    }
)


@dataclass(frozen=True)
class HelmRelease:
    """A Helm release: which pinned chart, where, with which values."""

    key: str  # key into versions.CHARTS, also the release name
    namespace: str
    values: dict[str, Any] = field(default_factory=dict)

    @property
    def chart(self) -> Chart:
        """The pinned chart (name, version, repository) from versions.py."""
        return CHARTS[self.key]


@dataclass(frozen=True)
class NodeLabel:
    """A label put on an existing node (server-side apply patch), e.g. nvidia.com/mig.config."""

    node: str
    labels: dict[str, str]


@dataclass
class Plan:
    """Everything one component creates: releases first (they may install CRDs), then manifests."""

    name: str  # component name, e.g. "gpu"
    type_token: str  # e.g. "ailab:gpu:Gpu"
    releases: list[HelmRelease] = field(default_factory=list)
    manifests: list[Manifest] = field(default_factory=list)
    node_labels: list[NodeLabel] = field(default_factory=list)
    outputs: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class PlanInputs:
    """What every component builder takes beside the stack settings: the lab's own namespace and the folder of
    generated dashboards and rules (dashboards/ in the repository; a temporary one in tests)."""

    namespace: str
    dashboards_dir: Path


def api_group(manifest: Manifest) -> str:
    """'monitoring.coreos.com/v1' -> 'monitoring.coreos.com'; 'v1' -> ''."""
    api = manifest["apiVersion"]
    return api.rsplit("/", 1)[0] if "/" in api else ""


def meta(name: str, namespace: str | None = None, labels: dict[str, str] | None = None, **extra: Any) -> dict:
    """metadata block with the lab's common labels."""
    m: dict[str, Any] = {"name": name, "labels": {"app.kubernetes.io/part-of": "ailab", **(labels or {})}}
    if namespace:
        m["namespace"] = namespace
    m.update(extra)
    return m


def workload(kind: str, name: str, namespace: str, labels: dict[str, str], pod: dict, replicas: int | None = 1) -> dict:
    """A Deployment/StatefulSet (replicas) or DaemonSet (replicas=None) running `pod` under `labels`."""
    spec: dict[str, Any] = {
        "selector": {"matchLabels": labels},
        "template": {"metadata": {"labels": labels}, "spec": pod},
    }
    if replicas is not None:
        spec = {"replicas": replicas, **spec}
    return {"apiVersion": "apps/v1", "kind": kind, "metadata": meta(name, namespace, labels), "spec": spec}


def metrics_service(name: str, namespace: str, labels: dict[str, str], port: int) -> dict:
    """A Service exposing the pods' named `metrics` port (what ServiceMonitors select)."""
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": meta(name, namespace, labels),
        "spec": {"selector": labels, "ports": [{"name": "metrics", "port": port, "targetPort": "metrics"}]},
    }


def resources(
    cpu: str, memory: str, gpu: int = 0, cpu_limit: str | None = None, gpu_resource: str = "nvidia.com/gpu"
) -> dict:
    """requests and limits; GPUs are requested and limited alike (extended resources cannot overcommit);
    `gpu_resource` is the name the device plugin advertises (`GpuSettings.gpu_resource()`)."""
    req: dict[str, Any] = {"cpu": cpu, "memory": memory}
    lim: dict[str, Any] = {"cpu": cpu_limit or cpu, "memory": memory}
    if gpu:
        req[gpu_resource] = lim[gpu_resource] = str(gpu)
    return {"requests": req, "limits": lim}


def restricted(uid: int = 1000) -> dict:
    """Container securityContext of the restricted Pod Security profile with a read-only root filesystem."""
    return {
        "runAsNonRoot": True,
        "runAsUser": uid,
        "runAsGroup": uid,
        "allowPrivilegeEscalation": False,
        "readOnlyRootFilesystem": True,
        "capabilities": {"drop": ["ALL"]},
        "seccompProfile": {"type": "RuntimeDefault"},
    }


GPU_TOLERATIONS = [{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}]


def secret_ref(name: str) -> str:
    """Placeholder for a password generated by pulumi-random at `pulumi up` (rendered as-is by `lab render`)."""
    return "${secret:" + name + "}"


SECRET_PATTERN = r"\$\{secret:([a-z0-9-]+)\}"
