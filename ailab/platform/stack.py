"""Build a week's stack in Pulumi: validate (settings, host, plans) first, then one ComponentResource per plan."""

from __future__ import annotations

import copy
import re
from typing import Any

import pulumi_kubernetes as k8s
import pulumi_random as random
from pulumi_kubernetes.yaml.yaml import _parse_yaml_object

import pulumi
from ailab.platform import cluster
from ailab.platform.config import StackSettings
from ailab.platform.hostcheck import HostProbe, check_kind_gpu
from ailab.platform.model import CORE_GROUPS, CRD_PROVIDERS, SECRET_PATTERN, HelmRelease, Plan, api_group
from ailab.platform.plan import plan_stack


def _secret_names(value: Any) -> set[str]:
    if isinstance(value, str):
        return set(re.findall(SECRET_PATTERN, value))
    if isinstance(value, dict):
        return set().union(*(_secret_names(v) for v in value.values())) if value else set()
    if isinstance(value, list):
        return set().union(*(_secret_names(v) for v in value)) if value else set()
    return set()


def _substitute(value: Any, secrets: dict[str, pulumi.Output[str]]) -> Any:
    """Replace ${secret:name} placeholders with the generated passwords (as Pulumi secrets)."""
    if isinstance(value, str) and re.search(SECRET_PATTERN, value):
        parts = re.split(SECRET_PATTERN, value)  # odd indexes are names
        pieces = [secrets[p] if i % 2 else p for i, p in enumerate(parts) if p]
        return pulumi.Output.secret(pulumi.Output.concat(*pieces))
    if isinstance(value, dict):
        return {k: _substitute(v, secrets) for k, v in value.items()}
    if isinstance(value, list):
        return [_substitute(v, secrets) for v in value]
    return value


def _objects(obj: dict[str, Any], opts: pulumi.ResourceOptions, transformations: list, prefix: str) -> list:
    """Register one manifest as its typed pulumi_kubernetes resource (Deployment, Secret, CustomResource, ...).

    This is the parser behind yaml.ConfigGroup(yaml=...) in pulumi_kubernetes; it is used directly because
    that component only takes YAML text it decodes through the provider, and yaml.v2 renders on the provider
    side (nothing under mocks). The resource name is `<component>-<namespace>/<name>` like ConfigGroup's.
    """
    return _parse_yaml_object(obj, opts, transformations, prefix)


CONFIG_KINDS = ("Secret", "ConfigMap")


def _config_object(
    prefix: str, m: dict[str, Any], secrets: dict[str, pulumi.Output[str]], opts: pulumi.ResourceOptions
) -> pulumi.Resource:
    """A Secret or ConfigMap as its typed resource (named like _objects names them)."""
    m = _substitute(m, secrets)
    meta = m["metadata"]
    name = f"{prefix}-{meta.get('namespace', 'default')}/{meta['name']}"
    if m["kind"] == "Secret":
        return k8s.core.v1.Secret(name, metadata=meta, type=m.get("type"), string_data=m.get("stringData"), opts=opts)
    return k8s.core.v1.ConfigMap(name, metadata=meta, data=m.get("data"), opts=opts)


class LabComponent(pulumi.ComponentResource):
    """One concern of the lab (type token from its plan, e.g. ailab:gpu:Gpu): its Helm releases, CRDs,
    manifests and node labels, with custom resources ordered after the releases that install their CRDs."""

    def __init__(
        self,
        plan: Plan,
        releases_by_key: dict[str, k8s.helm.v3.Release],
        secrets: dict[str, pulumi.Output[str]],
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__(plan.type_token, plan.name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        # Secrets and ConfigMaps first: releases read some of them (grafana-admin, thanos-objstore, the GPU
        # Operator's device-plugin and mig-parted configs) and wait for pods that cannot start without them.
        previous: list[pulumi.Resource] = [
            _config_object(plan.name, m, secrets, child) for m in plan.manifests if m["kind"] in CONFIG_KINDS
        ]
        for r in plan.releases:  # in plan order: istio-base -> istiod -> gateway
            release = self._release(
                r, secrets, pulumi.ResourceOptions.merge(child, pulumi.ResourceOptions(depends_on=previous))
            )
            releases_by_key[r.key] = release
            previous = [release]
        crd_manifests = [m for m in plan.manifests if m["kind"] == "CustomResourceDefinition"]
        others = [m for m in plan.manifests if m["kind"] not in ("CustomResourceDefinition", *CONFIG_KINDS)]
        own_groups = {m["spec"]["group"] for m in crd_manifests}
        crds: list[pulumi.Resource] = [
            k8s.apiextensions.v1.CustomResourceDefinition(
                f"{plan.name}-{m['metadata']['name']}",
                metadata=m["metadata"],
                spec=copy.deepcopy(m["spec"]),
                opts=child,
            )
            for m in crd_manifests
        ]

        def order(obj: dict[str, Any], opts: pulumi.ResourceOptions) -> None:
            group = api_group({"apiVersion": obj["apiVersion"]})
            if group in own_groups:
                opts.depends_on = crds
            elif group not in CORE_GROUPS and CRD_PROVIDERS.get(group) in releases_by_key:
                opts.depends_on = [releases_by_key[CRD_PROVIDERS[group]]]

        for m in others:
            _objects(_substitute(m, secrets), child, [order], plan.name)
        for nl in plan.node_labels:  # server-side apply patch: only these labels are owned by the stack
            k8s.core.v1.NodePatch(
                f"{plan.name}-{nl.node}-labels",
                metadata=k8s.meta.v1.ObjectMetaPatchArgs(name=nl.node, labels=nl.labels),
                opts=pulumi.ResourceOptions.merge(child, pulumi.ResourceOptions(depends_on=previous)),
            )
        self.register_outputs(plan.outputs)

    def _release(self, r: HelmRelease, secrets: dict[str, pulumi.Output[str]], opts: pulumi.ResourceOptions):
        return k8s.helm.v3.Release(
            r.key,
            k8s.helm.v3.ReleaseArgs(
                name=r.key,
                chart=r.chart.chart,
                version=r.chart.version,
                repository_opts=k8s.helm.v3.RepositoryOptsArgs(repo=r.chart.repo),
                namespace=r.namespace,
                create_namespace=False,  # the base component creates (and labels) every namespace
                values=_substitute(r.values, secrets),
                timeout=900,  # image pulls of GPU stacks are slow
            ),
            opts=opts,
        )


def provider(s: StackSettings, source: str, probe: HostProbe) -> k8s.Provider:
    """The Kubernetes provider of the target: a new kind cluster, the k3s server, or an existing cluster."""
    if s.cluster.target == "kind":
        from pulumi_command import local

        kind = local.Command(
            "kind-cluster",
            create=f"kind create cluster --name {s.cluster.name} --config - >&2 "
            f"&& kind get kubeconfig --name {s.cluster.name}",
            delete=f"kind delete cluster --name {s.cluster.name}",
            stdin=cluster.kind_config_yaml(s),
        )
        deps: list[pulumi.Resource] = [kind]
        if s.cluster.gpu:
            deps.append(
                local.Command(
                    "kind-gpu-nodes",
                    create=cluster.NODE_SETUP.format(name=s.cluster.name),
                    opts=pulumi.ResourceOptions(depends_on=[kind]),
                )
            )
        return k8s.Provider(
            "kind", kubeconfig=pulumi.Output.secret(kind.stdout), opts=pulumi.ResourceOptions(depends_on=deps)
        )
    if s.cluster.target == "k3s":
        return k8s.Provider("k3s", kubeconfig=pulumi.Output.secret(cluster.k3s_kubeconfig(s, source, probe)))
    return k8s.Provider("existing", kubeconfig=s.cluster.kubeconfig, context=s.cluster.context)


def build_stack(s: StackSettings, source: str, probe: HostProbe | None = None) -> dict[str, LabComponent]:
    """Validate everything, then create the week's components; nothing is created when a check fails."""
    probe = probe or HostProbe()
    if s.cluster.target == "kind" and s.cluster.gpu:
        check_kind_gpu(source, probe)
    plans = plan_stack(s, source)  # pure: raises ConfigError before any resource exists
    if s.cluster.target == "k3s":
        cluster.k3s_kubeconfig(s, source, probe)
    names = sorted(
        set().union(*(_secret_names([m for m in p.manifests] + [r.values for r in p.releases]) for p in plans))
    )
    k8s_provider = provider(s, source, probe)
    secrets = {n: random.RandomPassword(f"{n}-password", length=32, special=False).result for n in names}
    opts = pulumi.ResourceOptions(providers={"kubernetes": k8s_provider})
    releases: dict[str, k8s.helm.v3.Release] = {}
    components: dict[str, LabComponent] = {}
    base = None
    for p in plans:
        # after the namespaces and every release so far: CRDs, istiod's sidecar injector, ... exist first
        deps = ([base] if base is not None else []) + list(releases.values())
        comp = LabComponent(
            p, releases, secrets, pulumi.ResourceOptions.merge(opts, pulumi.ResourceOptions(depends_on=deps))
        )
        components[p.name] = comp
        base = base or comp
    for p in plans:
        for key, value in p.outputs.items():
            pulumi.export(key, value)
    pulumi.export("week", s.week)
    pulumi.export("components", [p.name for p in plans])
    return components
