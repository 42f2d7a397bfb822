"""One Triton, three ways in: kubectl port-forward, a NodePort, the Istio ingress gateway. The same open-loop load
through each with the lab's load generator: latency percentiles and throughput per route."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from ailab.contract import Context, Output, Table
from workloads.cluster.load import LOAD_COLUMNS, drive, endpoint, load_table_row
from workloads.cluster.run import host_note, on_stack
from workloads.cluster.session import ClusterParams
from workloads.cluster.stack import StackError


class ExposureParams(ClusterParams):
    routes: list[Literal["port-forward", "nodeport", "ingress"]] = Field(
        default=["port-forward", "nodeport", "ingress"], min_length=1
    )
    qps: float = Field(default=200, gt=0, le=50_000, description="open-loop arrival rate, req/s")
    duration_s: float = Field(default=30, gt=0, description="measured window per route, s")


def exposure_latency(ctx: Context, p: ExposureParams) -> Output:
    """The same load through each route: p50/p99, throughput, errors (a route the stack lacks is named, not run)."""
    t = Table.of("routes", [("route", ""), *LOAD_COLUMNS])
    skipped = []
    with on_stack(ctx, p) as (s, view):
        for route in p.routes:
            if route == "ingress" and not view.has("mesh"):
                skipped.append(f"ingress: week {view.week:02d}'s stack has no ingress gateway (mesh off)")
                continue
            try:
                with endpoint(s, view, route) as url:
                    res = drive(url, view.model, p.qps, p.duration_s)
            except StackError as exc:
                skipped.append(f"{route}: {exc}")
                continue
            t.add(route, *load_table_row(res))
    return Output(
        tables=[t],
        notes=[
            host_note(),
            *skipped,
            "port-forward tunnels through the API server to one pod; NodePort goes through "
            "kube-proxy to any ready pod; ingress adds the Envoy gateway (and sidecar) hops",
        ],
    )
