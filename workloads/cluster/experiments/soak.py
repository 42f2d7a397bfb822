"""Long runs and high rates against the week's Triton: each step holds an open-loop rate for its duration through
the chosen route; per-window p99 and errors show whether latency and errors stay flat (drift = last quarter's
median p99 over the first quarter's). Targets are reported as MET / NOT MET, never asserted."""

from __future__ import annotations

import math
from typing import Literal

from pydantic import Field

from ailab.contract import Column, Context, Output, Series, Table
from workloads.cluster.load import LOAD_COLUMNS, drive, endpoint, load_table_row
from workloads.cluster.run import host_note, on_stack
from workloads.cluster.session import ClusterParams
from workloads.cluster.timeline import drift, windows


class SoakParams(ClusterParams):
    steps_qps: list[float] = Field(default=[200], min_length=1)
    duration_s: float = Field(default=3600, gt=0, description="each step's measured window, s")
    route: Literal["nodeport", "ingress", "port-forward"] = "nodeport"
    window_s: float = Field(default=30, gt=0)
    processes: int = Field(default=1, ge=1, le=64, description="load generator processes (high rates)")
    max_drift: float = Field(default=1.5, gt=1, description="target: last/first quarter p99 at most this")
    max_error_rate: float = Field(default=0.001, ge=0, le=1, description="target: failed / sent at most this")


def soak(ctx: Context, p: SoakParams) -> Output:
    """Each rate for its duration: overall latency and errors, p99 per window, drift and the MET/NOT MET verdict."""
    t = Table.of("steps", [("step", "req/s"), *LOAD_COLUMNS, ("p99_drift", "x"), ("error_rate", ""), ("target", "")])
    series = Series("p99", x=Column("t", "s"), y=Column(f"p99 per {p.window_s:g} s", "ms"))
    with on_stack(ctx, p) as (s, view), endpoint(s, view, p.route) as url:
        for qps in p.steps_qps:
            res = drive(url, view.model, qps, p.duration_s, processes=p.processes)
            wins = windows(res.timeline, p.window_s, res.window_s)
            d = drift(wins)
            rate = (res.sent - res.ok) / res.sent if res.sent else math.nan
            met = (not math.isnan(d) and d <= p.max_drift) and rate <= p.max_error_rate and "target met" in res.verdict
            t.add(qps, *load_table_row(res), round(d, 3), round(rate, 6), "MET" if met else "NOT MET")
            for w in wins:
                if w.requests and not math.isnan(w.p99_ms):
                    series.point(f"{qps:g} req/s", w.start_s, w.p99_ms)
    return Output(
        tables=[t],
        series=[series],
        notes=[
            host_note(),
            f"targets: p99 drift <= {p.max_drift:g}x, error rate <= {p.max_error_rate:g}, "
            "and the generator sent the target rate (its verdict)",
        ],
    )
