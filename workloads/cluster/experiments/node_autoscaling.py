"""Cluster Autoscaler under load: Triton's own HPA (CPU) asks for more replicas than the nodes hold, the pending
pods make the autoscaler add nodes, the load drops and it removes them. Node counts, pending pods and replicas are
sampled; times to scale out and in and the requests that failed while nodes went away are computed from them.
With `compare_hpa_only` the same load runs again with the autoscaler scaled to zero (HPA only)."""

from __future__ import annotations

import threading
import time
from typing import Any

from pydantic import Field

from ailab.contract import Column, Context, Output, Series, Skip, Table
from workloads.cluster import scaling
from workloads.cluster.experiments.autoscaling import ScaleParams, install_scaler
from workloads.cluster.load import drive, endpoint
from workloads.cluster.objects import condition
from workloads.cluster.run import host_note, needs, on_stack
from workloads.cluster.session import ClusterSession
from workloads.cluster.timeline import error_span

CA_SELECTOR = "app.kubernetes.io/instance=cluster-autoscaler"  # the Helm release the week 10 stack installs


class NodeScaleParams(ScaleParams):
    max_replicas: int = Field(default=8, ge=1, le=100)
    steps_qps: list[float] = Field(default=[100, 500, 1000, 2000], min_length=1)
    step_s: float = Field(default=120, gt=0)
    low_qps: float = Field(default=50, gt=0, description="load kept during the scale-in, req/s")
    scale_in_s: float = Field(default=900, gt=0, description="how long to watch the scale-in (CA waits ~10 min)")
    compare_hpa_only: bool = False
    status_only: bool = Field(default=False, description="only check the autoscaler is deployed and healthy")


def ready_nodes(nodes: list[dict[str, Any]]) -> int:
    return sum(1 for n in nodes if (condition(n, "Ready") or {}).get("status") == "True")


def pending(pods: list[dict[str, Any]]) -> int:
    return sum(1 for x in pods if (x.get("status") or {}).get("phase") == "Pending")


def autoscaler(s: ClusterSession) -> dict[str, Any]:
    found = s.api.list("apps/v1", "Deployment", "kube-system", CA_SELECTOR)
    if not found:
        raise Skip(f"no Cluster Autoscaler Deployment in kube-system ({CA_SELECTOR}): {needs.AUTOSCALER}")
    return found[0]


def _phase(s: ClusterSession, ns: str, url: str, model: str, plan: list[tuple[float, float]], label: str) -> dict:
    samples: list[tuple[float, int, int, int]] = []  # t, ready nodes, pending triton pods, spec replicas
    stop = threading.Event()

    def watch() -> None:
        while not stop.is_set():
            d = s.get("apps/v1", "Deployment", "triton-stable", ns) or {}
            samples.append(
                (
                    time.time(),
                    ready_nodes(s.nodes()),
                    pending(s.pods("app=triton", ns)),
                    int(d.get("spec", {}).get("replicas") or 0),
                )
            )
            time.sleep(2.0)

    w = threading.Thread(target=watch, daemon=True)
    w.start()
    t0, results = time.time(), []
    try:
        for qps, secs in plan:
            results.append((qps, time.time(), drive(url, model, qps, secs, warmup_s=0.5)))
    finally:
        stop.set()
        w.join()
    return {"label": label, "t0": t0, "samples": samples, "results": results}


def cluster_autoscaler(ctx: Context, p: NodeScaleParams) -> Output:
    """Nodes added and removed by the Cluster Autoscaler as load ramps up and falls: times, pending pods, errors."""
    with on_stack(ctx, p, needs.AUTOSCALER, needs.GPU_NODES, needs.HPA_METRICS) as (s, view):
        ca = autoscaler(s)
        status = (s.get("v1", "ConfigMap", "cluster-autoscaler-status", "kube-system") or {}).get("data", {})
        st = Table.of("autoscaler", [("deployment", ""), ("ready", "pods"), ("status", "")])
        st.add(
            ca["metadata"]["name"],
            (ca.get("status") or {}).get("readyReplicas", 0),
            " ".join(status.get("status", "no cluster-autoscaler-status ConfigMap").split())[:300],
        )
        if p.status_only:
            return Output(tables=[st])
        ns = view.namespace
        install_scaler(s, view, "cpu", p, None)  # the run's own HPA on CPU drives the replicas
        phases = []
        with endpoint(s, view, "nodeport") as url:
            plan = [(q, p.step_s) for q in p.steps_qps] + [(p.low_qps, p.scale_in_s)]
            phases.append(_phase(s, ns, url, view.model, plan, "Cluster Autoscaler + HPA"))
            if p.compare_hpa_only:
                name = ca["metadata"]["name"]
                s.patch("apps/v1", "Deployment", name, "kube-system", {"spec": {"replicas": 0}})
                s.wait(
                    "scale-in to min",
                    lambda: (
                        (s.get("apps/v1", "Deployment", "triton-stable", ns) or {}).get("spec", {}).get("replicas", 99)
                        <= p.min_replicas
                    ),
                    p.settle_s,
                    poll_s=5,
                )
                phases.append(_phase(s, ns, url, view.model, plan, "HPA only"))
    t = Table.of(
        "node_scaling",
        [
            ("run", ""),
            ("nodes_start", "nodes"),
            ("nodes_peak", "nodes"),
            ("nodes_end", "nodes"),
            ("scale_out", "s"),
            ("scale_in", "s"),
            ("peak_pending", "pods"),
            ("errors_during_scale_in", "requests"),
            ("p99_peak_step", "ms"),
        ],
    )
    series = Series("nodes", x=Column("t since load start", "s"), y=Column("ready nodes", "nodes"))
    for ph in phases:
        smp = ph["samples"]
        nodes = [(t_, n) for t_, n, _, _ in smp]
        start = nodes[0][1] if nodes else 0
        peak = max((n for _, n in nodes), default=0)
        first_pending = next((t_ for t_, _, pend, _ in smp if pend), None)
        out_s = scaling.time_to_reach(nodes, first_pending, start + 1) if first_pending is not None else None
        in_start = ph["results"][-1][1]
        in_s = scaling.time_to_settle(nodes, in_start, start) if peak > start else None
        last = ph["results"][-1][2]
        errs = error_span(last.timeline)
        peak_step = max(ph["results"][:-1], key=lambda r: r[0])[2] if len(ph["results"]) > 1 else last
        rnd = lambda v: round(v, 1) if v is not None else "-"  # noqa: E731
        t.add(
            ph["label"],
            start,
            peak,
            nodes[-1][1] if nodes else "-",
            rnd(out_s),
            rnd(in_s),
            max((pd for _, _, pd, _ in smp), default=0),
            last.sent - last.ok if errs else 0,
            round(peak_step.latency_ms["p99"], 2),
        )
        for t_, n in nodes:
            series.point(ph["label"], round(t_ - ph["t0"], 1), n)
    return Output(tables=[st, t], series=[series], notes=[host_note()])
