"""What every cluster runner does first: find the cluster and the week's stack, or skip saying what is missing.

    with on_stack(ctx, p, needs.ISTIO) as (s, view):
        ...

The skip names where the cluster was looked for and everything else the experiment needs (the week's stack,
GPU nodes, Istio, Argo CD, KEDA + Kafka, Cluster Autoscaler, a Git repository), so a user knows the whole list
before building a cluster. Which weeks turn a component on is read from ailab/contract/facts/weeks.yaml.
"""

from __future__ import annotations

import platform
from collections.abc import Iterator
from contextlib import contextmanager

from ailab.contract import Context, Skip, facts
from workloads.cluster.session import ClusterParams, ClusterSession, cluster_session
from workloads.cluster.stack import StackView, week_of_day


def weeks_with(component: str, setting: str | None = None) -> str:
    """'weeks 4, 6, 7' for the weeks whose stack turns `component` (and its `setting`, if given) on."""
    out = []
    for n, w in sorted(facts.weeks().weeks.items()):
        conf = w.cluster.get(component)
        if conf is None:
            continue
        if setting is not None:
            value = conf.get(setting)  # present means on (`circuitBreaker: {}` takes the defaults) unless disabled
            if value is None or value is False or (isinstance(value, dict) and not value.get("enabled", True)):
                continue
        out.append(str(n))
    return ("weeks " + ", ".join(out)) if out else "no week"


class needs:  # noqa: N801 - a namespace of requirement phrases, read as needs.ISTIO
    GPU_NODES = "GPU nodes (the NVIDIA device plugin advertising nvidia.com/gpu)"
    FOUR_GPU_NODE = "a node with 4 allocatable GPUs (for the 4-GPU request)"
    GPU_SHARING = f"GPU time-slicing or MPS on a node (gpu.sharing: {weeks_with('gpu', 'sharing')})"
    TOPOLOGY = "kubelets with Topology/CPU Manager policies set (k3s agents, `k3sKubeletArgs` of week 8)"
    ISTIO = f"Istio (mesh: {weeks_with('mesh')})"
    MIRROR = f"Istio mirroring (mesh.mirror: {weeks_with('mesh', 'mirror')})"
    CIRCUIT = f"Istio circuit breaking (mesh.circuitBreaker: {weeks_with('mesh', 'circuitBreaker')})"
    RATE_LIMIT = f"Istio local rate limit (mesh.rateLimit: {weeks_with('mesh', 'rateLimit')})"
    TRACING = f"Jaeger + OpenTelemetry Collector (tracing: {weeks_with('tracing')})"
    PROMETHEUS = f"kube-prometheus-stack (monitoring: {weeks_with('monitoring')})"
    PROM_ADAPTER = "prometheus-adapter serving the QPS metric (serving.hpa with queueTimeUs: weeks 3, 13)"
    HPA_METRICS = "metrics-server (CPU utilisation for the HPA)"
    ARGOCD = f"Argo CD (delivery: {weeks_with('delivery')})"
    GIT = "a Git repository Argo CD can read, and a local clone with push access (--set git_clone=...)"
    JENKINS = "a Jenkins job that builds the image and bumps the tag in Git (--set jenkins_url=... jenkins_job=...)"
    KEDA = "KEDA (serving.keda: weeks 9, 12)"
    KAFKA = "a Kafka broker and topic (no week stack deploys one: --set kafka_bootstrap=... kafka_topic=...)"
    AUTOSCALER = "Cluster Autoscaler with a node group that can grow (autoscaler, target existing: week 10)"
    OPERATOR = f"the ModelDeployment operator (objects.operator: {weeks_with('objects', 'operator')})"
    STORAGE = "a default StorageClass that provisions PersistentVolumes"
    CANARY = f"a canary Deployment (serving.canary: {weeks_with('serving', 'canary')})"


def week_for(ctx: Context, p: ClusterParams) -> int:
    return p.week or week_of_day(int(ctx.experiment_id[1:3]))


@contextmanager
def on_stack(ctx: Context, p: ClusterParams, *also: str) -> Iterator[tuple[ClusterSession, StackView]]:
    """A cleaned-up session on the cluster plus the week's rendered stack; Skip when either is missing."""
    week = week_for(ctx, p)
    stack_need = f"the week {week:02d} stack deployed (`pulumi up -s week{week:02d}`)"
    with cluster_session(ctx, p, also_needs=[stack_need, *also]) as s:
        view = StackView.load(week, ctx.workdir)
        if s.get("v1", "Namespace", view.namespace, None) is None:
            raise Skip(f"the cluster has no namespace {view.namespace!r}: {stack_need} first")
        yield s, view


def host_note() -> str:
    """Where the load generator ran (the runner's host): its latency includes the route into the cluster."""
    return f"load generated from {platform.node()} ({platform.machine()}) outside the cluster"
