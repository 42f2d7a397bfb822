"""Chaos: delete pods at random under load and measure how the workload recovers. For the week's Triton
(a Deployment) the load generator runs through a NodePort during the drill; for a StatefulSet (MySQL, from
stateful.py) the same-name pod and its claim come back. Times come from pod objects and sampled ready counts
(workloads/cluster/recovery.py); errors and the p99 jitter from the load generator's timeline."""

from __future__ import annotations

import math
import random
import threading
import time
from typing import Literal

from pydantic import Field

from ailab.contract import Column, Context, Output, Series, Table
from workloads.cluster import recovery
from workloads.cluster.experiments.stateful import STS, StatefulParams, deploy
from workloads.cluster.load import drive, endpoint
from workloads.cluster.objects import pod_ready
from workloads.cluster.run import host_note, needs, on_stack
from workloads.cluster.session import ClusterSession
from workloads.cluster.timeline import error_span, windows


class ChaosParams(StatefulParams):
    target: Literal["triton", "statefulset"] = "triton"
    deletions: int = Field(default=3, ge=1, le=50)
    interval_s: float = Field(default=60, gt=0, description="time between deletions (and after the last), s")
    qps: float = Field(default=100, gt=0, le=50_000, description="triton: load during the drill, req/s")
    seed: int = 0


def _ready(s: ClusterSession, selector: str, ns: str) -> int:
    return sum(1 for x in s.pods(selector, ns) if pod_ready(x))


def delete_pods(ctx: Context, p: ChaosParams) -> Output:
    """Delete a random ready pod every interval: replacement created / Ready after, back to full, errors, p99."""
    rng = random.Random(p.seed)
    samples: list[tuple[float, int]] = []
    kills: list[tuple[str, float]] = []
    rows: list[recovery.Replacement] = []
    also = (needs.STORAGE,) if p.target == "statefulset" else ()
    with on_stack(ctx, p, *also) as (s, view):
        if p.target == "triton":
            ns, selector = view.namespace, "app=triton,version=stable"
            d = s.get("apps/v1", "Deployment", "triton-stable", ns) or {}
            desired = int(d.get("spec", {}).get("replicas") or 1)
        else:
            deploy(s, p, p.replicas)
            ns, selector, desired = s.namespace, f"app={STS}", p.replicas
        stop = threading.Event()

        def watch() -> None:
            while not stop.is_set():
                samples.append((time.time(), _ready(s, selector, ns)))
                time.sleep(0.5)

        def drill() -> None:
            for _ in range(p.deletions):
                time.sleep(p.interval_s / 2)
                ready = [x["metadata"]["name"] for x in s.pods(selector, ns) if pod_ready(x)]
                if ready:
                    victim = rng.choice(sorted(ready))
                    kills.append((victim, time.time()))
                    s.delete("v1", "Pod", victim, ns)
                time.sleep(p.interval_s / 2)

        w = threading.Thread(target=watch, daemon=True)
        w.start()
        res = None
        t_load = time.time()
        try:
            if p.target == "triton":
                with endpoint(s, view, "nodeport") as url:
                    dr = threading.Thread(target=drill, daemon=True)
                    dr.start()
                    res = drive(url, view.model, p.qps, p.deletions * p.interval_s + 5, warmup_s=0.5)
                    dr.join()
            else:
                drill()
            s.wait("back to full", lambda: _ready(s, selector, ns) >= desired, 600, poll_s=1.0)
        finally:
            stop.set()
            w.join()
        pods = s.pods(selector, ns)
        rows = [recovery.replacement(pods, name, t) for name, t in kills]
    t = Table.of(
        "deletions",
        [
            ("pod", ""),
            ("replacement", ""),
            ("created_after", "s"),
            ("ready_after", "s"),
            ("back_to_full", "s"),
            ("lowest_ready", "pods"),
        ],
    )
    for r in rows:
        full = recovery.back_to_full(samples, r.deleted_at, desired)
        rnd = lambda v: round(v, 2) if v is not None else "-"  # noqa: E731
        t.add(
            r.deleted,
            r.replacement or "-",
            rnd(r.created_after_s),
            rnd(r.ready_after_s),
            rnd(full),
            recovery.lowest([x for x in samples if x[0] < r.deleted_at + p.interval_s], r.deleted_at),
        )
    out_tables = [t]
    series = [Series("ready", x=Column("t", "s"), y=Column("ready", "pods"))]
    t0 = samples[0][0] if samples else 0.0
    for ts_, n in samples:
        series[0].point("ready pods", round(ts_ - t0, 1), n)
    notes = [f"{desired} desired replicas; {len(kills)} deletions every {p.interval_s:g} s"]
    if res is not None:
        load_t = Table.of(
            "load",
            [
                ("sent", "requests"),
                ("errors", "requests"),
                ("p99", "ms"),
                ("p99_window_max", "ms"),
                ("p99_window_median", "ms"),
            ],
        )
        wins = [w for w in windows(res.timeline, 5.0, res.window_s) if w.requests]
        p99s = sorted(w.p99_ms for w in wins if not math.isnan(w.p99_ms))
        load_t.add(
            res.sent,
            res.sent - res.ok,
            round(res.latency_ms["p99"], 2),
            round(p99s[-1], 2) if p99s else "-",
            round(p99s[len(p99s) // 2], 2) if p99s else "-",
        )
        out_tables.append(load_t)
        span = error_span(res.timeline)
        notes.append(f"errors between {span[0]:.1f} and {span[1]:.1f} s of the window" if span else "no failed request")
        notes.append(host_note())
        base = t_load + res.spec["warmup_s"]
        p99 = Series("p99", x=Column("t", "s"), y=Column("p99 per 5 s", "ms"))
        for win in wins:
            p99.point("p99", round(base + win.start_s - t0, 1), win.p99_ms)
        series.append(p99)
    return Output(tables=out_tables, series=series, notes=notes)
