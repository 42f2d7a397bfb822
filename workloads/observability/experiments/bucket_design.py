"""Latency histogram buckets: coarse vs fine under the same load (d06.e2), and bounds designed from the data
against both (d13.e1). Quantile error is measured against every latency the client saw."""

from __future__ import annotations

import math
import time

from pydantic import Field

from ailab.contract import Column, Context, Output, Params, Series, Table
from workloads.exporters.traffic import BUCKETS
from workloads.observability.metering import metered_traffic
from workloads.observability.quantiles import cv_percent, exact_quantile, histogram_quantile
from workloads.observability.stack import observed_platform

QUANTILES = (0.5, 0.95, 0.99)
OBSERVED = ["triton", "exporter", "prometheus"]


class BucketStabilityParams(Params):
    window_s: float = Field(default=60, gt=15, description="measured window (quantiles use rate over 15 s), s")
    rps: float = Field(default=30, gt=0, description="rate of each of the two load generators, req/s")


class BucketDesignParams(Params):
    window_s: float = Field(default=40, gt=0, description="how long latencies are collected, s")
    rps: float = Field(default=40, gt=0, description="load generator rate, req/s")


def bucket_stability(ctx: Context, p: BucketStabilityParams) -> Output:
    """P95/P99 from coarse vs fine buckets (same requests), their stability and the series each costs."""
    window = p.window_s
    t = Table.of(
        "coarse vs fine latency buckets",
        [("buckets", ""), ("bucket series", "series"), ("P95 mean", "ms"), ("P95 variation", "% CV"),
         ("P99 mean", "ms"), ("P99 variation", "% CV"), ("exact P95", "ms"), ("exact P99", "ms"),
         ("P99 error vs exact", "%")],
        caption="Two load generators, one per bucket layout, send the same rate at the same Triton at the same time; "
        "quantiles are histogram_quantile over rate(...[15s]) sampled every 1 s.",
    )  # fmt: skip
    series = Series("P99 over time", x=Column("time", "s"), y=Column("P99", "ms"))
    with (
        observed_platform(ctx.platform, ctx.workdir / "stack", services=OBSERVED) as s,
        metered_traffic(s, "fine", rps=p.rps, workers=2, buckets="fine", keep_samples=True) as fine,
        metered_traffic(s, "coarse", rps=p.rps, workers=2, buckets="coarse", keep_samples=True) as coarse,
    ):
        s.prom.wait_for('count(up{job="loadgen"} == 1)', 30, lambda v: v >= 2)
        time.sleep(window)  # the measured window: both generators running
        t1 = time.time()
        for name, tr in (("fine", fine), ("coarse", coarse)):
            b = f'lab_loadgen_request_duration_seconds_bucket{{generator="{name}"}}'
            q = {x: s.prom.query_range(f"histogram_quantile({x}, sum by (le) (rate({b}[15s])))",
                                       t1 - window + 15, t1, 1) for x in (0.95, 0.99)}  # fmt: skip
            p95 = [v * 1000 for _, v in q[0.95]]
            p99 = [v * 1000 for _, v in q[0.99]]
            ex95, ex99 = exact_quantile(tr.samples, 0.95) * 1000, exact_quantile(tr.samples, 0.99) * 1000
            m99 = sum(p99) / len(p99) if p99 else float("nan")
            t.add(name, len(BUCKETS[name]) + 1, round(sum(p95) / max(1, len(p95)), 2), round(cv_percent(p95), 1),
                  round(m99, 2), round(cv_percent(p99), 1), round(ex95, 2), round(ex99, 2),
                  round(100 * (m99 - ex99) / ex99, 1))  # fmt: skip
            for tt, v in q[0.99]:
                series.point(name, round(tt - t1 + window, 1), round(v * 1000, 3))
    return Output(
        tables=[t],
        series=[series],
        notes=[
            "Coarse buckets interpolate linearly across a whole decade, so P99 lands wherever the bucket's "
            "straight line puts it: biased and jumpy when the true P99 sits inside a wide bucket. Fine buckets "
            "cost one series per bucket per label set (and per target).",
            "'exact' is the nearest-rank quantile of every latency the client measured in the run (not only the "
            "window), so it is the reference for bias, not a time series.",
        ],
    )


def designed_buckets(samples: list[float], n: int = 12) -> tuple[float, ...]:
    """Log-spaced bounds from half the observed P1 to twice the observed P99.9, rounded to 2 significant digits."""
    lo, hi = exact_quantile(samples, 0.01) / 2, exact_quantile(samples, 0.999) * 2
    bounds = [lo * (hi / lo) ** (i / (n - 1)) for i in range(n)]
    return tuple(sorted({float(f"{b:.2g}") for b in bounds}))


def bucket_design(ctx: Context, p: BucketDesignParams) -> Output:
    """Quantile error of coarse, fine and data-designed latency buckets on real Triton latencies."""
    t = Table.of(
        "latency bucket layouts",
        [("layout", ""), ("buckets", "buckets"), ("range", "ms")]
        + [(f"P{int(q * 100)} error", "%") for q in QUANTILES]
        + [("worst error", "%")],
        caption="Every latency the client measured is replayed into each layout; error = Prometheus-style "
        "histogram_quantile vs the exact nearest-rank quantile of the same samples.",
    )
    with (
        observed_platform(ctx.platform, ctx.workdir / "stack", services=OBSERVED) as s,
        metered_traffic(s, rps=p.rps, workers=3, keep_samples=True) as tr,
    ):
        time.sleep(p.window_s)
        samples = list(tr.samples)
        qps_count = s.prom.value("sum(rate(lab_loadgen_request_duration_seconds_count[30s]))")
        qps_triton = s.prom.value("sum(rate(nv_inference_request_success[30s]))")
    layouts = {**BUCKETS, "designed": designed_buckets(samples)}
    for name, bounds in layouts.items():
        errs = [
            100 * (histogram_quantile(q, bounds, samples) - exact_quantile(samples, q)) / exact_quantile(samples, q)
            for q in QUANTILES
        ]
        t.add(name, len(bounds), f"{bounds[0] * 1000:g}-{bounds[-1] * 1000:g}", *[round(e, 1) for e in errs],
              round(max(abs(e) for e in errs), 1))  # fmt: skip
    q = Table.of(
        "QPS needs no histogram",
        [("source", ""), ("QPS", "req/s")],
        caption="rate() of the histogram's _count is the request rate; a counter is the right type for QPS.",
    )
    q.add("rate(lab_loadgen_request_duration_seconds_count[30s])", round(qps_count or math.nan, 2))
    q.add("rate(nv_inference_request_success[30s])", round(qps_triton or math.nan, 2))
    return Output(
        tables=[t, q],
        notes=[
            f"{len(samples)} latencies measured; designed bounds (s): {list(layouts['designed'])}.",
            "Put bucket bounds where the quantiles you alert on live (the SLO threshold should be a bound); "
            "each bucket is one more series per label set.",
        ],
    )
