"""Settings -> the week's component plans (pure): which components a week turns on, in creation order."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from ailab.contract import facts
from ailab.contract.paths import REPO_ROOT
from ailab.platform import cache, cluster, delivery, gpu, mesh, monitoring, objects, security, serving, tracing
from ailab.platform.config import NAMESPACE, ConfigError, StackSettings
from ailab.platform.model import CORE_GROUPS, CRD_PROVIDERS, Plan, PlanInputs, api_group


@dataclass(frozen=True)
class Component:
    """One cluster component: its builder (settings and inputs in, plan out) and what turns it on."""

    name: str
    build: Callable[[StackSettings, PlanInputs], Plan]
    # the settings section whose `enabled` a week sets by listing the component (ailab/contract/facts/weeks.yaml);
    # None: always built, its parts switched by their own settings (objects: log collector, operator, autoscaler)
    switch: str | None

    def enabled(self, s: StackSettings) -> bool:
        return True if self.switch is None else getattr(s, self.switch).enabled


# The registry, in creation order: releases that install CRDs (kube-prometheus-stack, istio-base, cert-manager,
# argo-cd) come before components whose custom resources need them; the stack adds explicit depends_on on top.
COMPONENTS: dict[str, Component] = {
    c.name: c
    for c in (
        Component("monitoring", monitoring.plan, "monitoring"),
        Component("mesh", mesh.plan, "mesh"),
        Component("security", security.plan, "security"),
        Component("delivery", delivery.plan, "delivery"),
        Component("gpu", gpu.plan, "gpu"),
        Component("cache", cache.plan, "cache"),
        Component("serving", serving.plan, "serving"),
        Component("objects", objects.plan, None),
        Component("tracing", tracing.plan, "tracing"),
    )
}


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
    inputs = PlanInputs(NAMESPACE, dashboards_dir or REPO_ROOT / "dashboards")
    try:
        plans = [c.build(s, inputs) for c in COMPONENTS.values() if c.enabled(s)]
    except facts.FactsError as exc:  # a broken facts file (images, operator, weeks): named, not a traceback
        raise ConfigError(str(exc)) from None
    used = {m["metadata"]["namespace"] for p in plans for m in p.manifests if "namespace" in m["metadata"]}
    used |= {r.namespace for p in plans for r in p.releases} | {n for p in plans for n in p.namespaces}
    plans.insert(0, cluster.namespaces(s, NAMESPACE, used))
    check_crd_providers(plans, source)
    return plans
