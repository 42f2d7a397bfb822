"""Two tenants on one GPU: two namespaces, each with a copy of the week's Triton Deployment asking for one
nvidia.com/gpu on a node whose GPUs are shared (time-slicing or MPS), loaded at the same time. Records where each
landed (same node, which GPU), and each tenant's latency and throughput with the fairness between them."""

from __future__ import annotations

import threading
from typing import Any

from pydantic import Field

from ailab.contract import Context, Output, Skip, Table
from workloads.cluster import pods
from workloads.cluster.load import LOAD_COLUMNS, drive, endpoint, load_table_row
from workloads.cluster.objects import node_gpus, placement
from workloads.cluster.run import host_note, needs, on_stack
from workloads.cluster.session import ClusterParams
from workloads.cluster.stack import StackView

TENANTS = ("tenant-a", "tenant-b")


class TenancyParams(ClusterParams):
    qps: float = Field(default=200, gt=0, le=50_000, description="each tenant's open-loop load, req/s")
    duration_s: float = Field(default=60, gt=0)
    timeout_s: float = Field(default=900, gt=0, description="how long the copies may take to become ready, s")


def tenant_deployment(view: StackView, tenant: str) -> dict[str, Any]:
    """The stack's Triton, one replica, in the tenant's namespace (without the stack's PriorityClass)."""
    labels = {"app": "triton", "version": "stable", "tenant": tenant}
    d = pods.triton_copy(view, "triton", labels, f"ailab-{tenant}")
    d["spec"]["template"]["spec"].pop("priorityClassName", None)
    return d


def shared_gpu_nodes(nodes: list[dict[str, Any]]) -> list[Any]:
    """GPU nodes whose GPUs are shared: GPU feature discovery's nvidia.com/gpu.replicas > 1, or more allocatable
    nvidia.com/gpu than physical GPUs (nvidia.com/gpu.count)."""
    out = []
    for node in nodes:
        g = node_gpus(node)
        labels = node["metadata"].get("labels") or {}
        replicas = int(labels.get("nvidia.com/gpu.replicas", "1") or 1)
        count = int(labels.get("nvidia.com/gpu.count", g.allocatable) or g.allocatable)
        if g.allocatable and (replicas > 1 or g.allocatable > count):
            out.append(g)
    return out


def fairness(a: float, b: float) -> float:
    """min/max of two tenants' figures (1.0 = equal); nan when either is missing."""
    return min(a, b) / max(a, b) if a and b and max(a, b) > 0 else float("nan")


def two_tenants(ctx: Context, p: TenancyParams) -> Output:
    """Both tenants' Triton on shared GPUs, loaded together: placement, per-tenant p50/p99 and throughput."""
    with on_stack(ctx, p, needs.GPU_NODES, needs.GPU_SHARING) as (s, view):
        shared = shared_gpu_nodes(s.nodes())
        if not shared:
            raise Skip(f"no node advertises more GPUs than it has (nvidia.com/gpu.count): {needs.GPU_SHARING}")
        for tenant in TENANTS:
            s.apply({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": f"ailab-{tenant}"}})
            d = tenant_deployment(view, tenant)
            d["spec"]["template"]["spec"]["nodeSelector"] = {"kubernetes.io/hostname": shared[0].name}
            s.apply(d)
        for tenant in TENANTS:
            s.wait_rollout("triton", f"ailab-{tenant}", timeout_s=p.timeout_s)
        pods = {t: s.pods(f"tenant={t}", f"ailab-{t}")[0] for t in TENANTS}
        results: dict[str, Any] = {}
        with (
            endpoint(s, view, "nodeport", {"app": "triton", "tenant": TENANTS[0]}, f"ailab-{TENANTS[0]}") as ua,
            endpoint(s, view, "nodeport", {"app": "triton", "tenant": TENANTS[1]}, f"ailab-{TENANTS[1]}") as ub,
        ):
            threads = [
                threading.Thread(
                    target=lambda t=t, u=u: results.__setitem__(t, drive(u, view.model, p.qps, p.duration_s))
                )
                for t, u in zip(TENANTS, (ua, ub), strict=True)
            ]
            for th in threads:
                th.start()
            for th in threads:
                th.join()
    place = Table.of("placement", [("tenant", ""), ("pod", ""), ("node", ""), ("gpus", "")])
    for t in TENANTS:
        pl = placement(pods[t])
        place.add(t, pl.pod, pl.node, pl.gpus)
    load = Table.of("load", [("tenant", ""), *LOAD_COLUMNS])
    for t in TENANTS:
        load.add(t, *load_table_row(results[t]))
    a, b = (results[t] for t in TENANTS)
    fair = Table.of("fairness", [("throughput", "min/max"), ("p99", "min/max")])
    fair.add(
        round(fairness(a.throughput_rps, b.throughput_rps), 3),
        round(fairness(a.latency_ms["p99"], b.latency_ms["p99"]), 3),
    )
    return Output(
        tables=[place, load, fair],
        notes=[host_note(), f"node {shared[0].name}: {shared[0].allocatable} schedulable GPUs advertised (shared)"],
    )
