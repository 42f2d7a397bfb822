"""Settings -> the week's component plans (pure): which components a week turns on, in creation order."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from ailab.contract.paths import REPO_ROOT
from ailab.platform import cache, cluster, delivery, gpu, mesh, monitoring, objects, security, serving, tracing
from ailab.platform.config import NAMESPACE, ConfigError, StackSettings
from ailab.platform.model import CORE_GROUPS, CRD_PROVIDERS, Plan, api_group

# Creation order: releases that install CRDs (kube-prometheus-stack, istio-base, cert-manager, argo-cd)
# come before components whose custom resources need them; the stack adds explicit depends_on on top.
COMPONENTS: list[tuple[str, Callable[[StackSettings], bool]]] = [
    ("monitoring", lambda s: s.monitoring.enabled),
    ("mesh", lambda s: s.mesh.enabled),
    ("security", lambda s: s.security.enabled),
    ("delivery", lambda s: s.delivery.enabled),
    ("gpu", lambda s: s.gpu.enabled),
    ("cache", lambda s: s.cache.enabled),
    ("serving", lambda s: s.serving.enabled),
    ("objects", lambda s: True),
    ("tracing", lambda s: s.tracing.enabled),
]


def _component_plan(name: str, s: StackSettings, dashboards_dir: Path) -> Plan:
    if name == "monitoring":
        return monitoring.plan(s, NAMESPACE, dashboards_dir)
    module = {
        "mesh": mesh,
        "security": security,
        "delivery": delivery,
        "gpu": gpu,
        "cache": cache,
        "serving": serving,
        "objects": objects,
        "tracing": tracing,
    }[name]
    return module.plan(s, NAMESPACE)


def check_crd_providers(plans: list[Plan], source: str) -> None:
    """Every custom resource's API group is installed by an enabled release or a CRD in the same stack."""
    releases = {r.key for p in plans for r in p.releases}
    own_crds = {m["spec"]["group"] for p in plans for m in p.manifests if m["kind"] == "CustomResourceDefinition"}
    for p in plans:
        for m in p.manifests:
            group = api_group(m)
            if group in CORE_GROUPS or group in own_crds:
                continue
            provider = CRD_PROVIDERS.get(group)
            if provider not in releases:
                raise ConfigError(
                    f"{source}: component {p.name} creates {m['kind']} ({group}) but its CRDs come from "
                    f"{provider or 'an unknown chart'}, which this stack does not enable"
                )


def plan_stack(s: StackSettings, source: str, dashboards_dir: Path | None = None) -> list[Plan]:
    """All plans of the stack: namespaces first, then the enabled components in creation order."""
    dashboards_dir = dashboards_dir or REPO_ROOT / "dashboards"
    plans = [_component_plan(name, s, dashboards_dir) for name, on in COMPONENTS if on(s)]
    used = {m["metadata"]["namespace"] for p in plans for m in p.manifests if "namespace" in m["metadata"]}
    used |= {r.namespace for p in plans for r in p.releases}
    plans.insert(0, cluster.namespaces(s, NAMESPACE, used))
    check_crd_providers(plans, source)
    return plans
