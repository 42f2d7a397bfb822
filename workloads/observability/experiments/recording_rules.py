"""Query time of a raw rate() expression vs its recording rule, under load, over a range (d06.e3, d13.e4)."""

from __future__ import annotations

import time

from pydantic import Field

from ailab.contract import Context, Output, Params, Table
from workloads.observability.metering import metered_traffic
from workloads.observability.quantiles import exact_quantile
from workloads.observability.stack import observed_platform

RAW = "sum by (instance, job, model) (rate(nv_inference_request_success[1m]))"
RECORDED = "model:nv_inference_request_success:rate1m"


class RecordingRuleParams(Params):
    repeats: int = Field(default=30, ge=1, description="queries of each expression")
    range_s: float = Field(default=300, gt=0, description="query_range span, s")
    warmup_s: float = Field(default=30, ge=0, description="load before the first query, s")
    rps: float = Field(default=40, gt=0, description="load generator rate, req/s")


def recording_rule_speed(ctx: Context, p: RecordingRuleParams) -> Output:
    """Query time (ms) of the raw QPS expression vs its recording rule, and the samples each loads."""
    t = Table.of(
        "raw query vs recording rule",
        [("query", ""), ("mean", "ms"), ("p95", "ms"), ("samples loaded", "samples"), ("result points", "points")],
        caption=f"query_range over the last {p.range_s:.0f} s at 1 s resolution, {p.repeats} repeats each, while the "
        "load generator runs; samples loaded from Prometheus' own stats=all.",
    )
    with (
        observed_platform(ctx.platform, ctx.workdir / "stack", services=["triton", "exporter", "prometheus"]) as s,
        metered_traffic(s, rps=p.rps, workers=3),
    ):
        s.prom.wait_for(RECORDED, 60)
        time.sleep(p.warmup_s)
        for name, expr in (("raw rate()", RAW), ("recording rule", RECORDED)):
            times, loaded, points = [], 0, 0
            for _ in range(p.repeats):
                end = time.time()
                t0 = time.perf_counter()
                d = s.prom.get(
                    "/api/v1/query_range",
                    {"query": expr, "start": end - p.range_s, "end": end, "step": 1, "stats": "all"},
                )
                times.append((time.perf_counter() - t0) * 1000)
                loaded = int(d.get("stats", {}).get("samples", {}).get("totalQueryableSamples", 0))
                points = sum(len(r["values"]) for r in d["result"])
            times.sort()
            t.add(name, round(sum(times) / len(times), 2), round(exact_quantile(times, 0.95), 2), loaded, points)
    return Output(
        tables=[t],
        notes=[
            "The recording rule reads one pre-computed series per model; the raw expression reads every underlying "
            "sample of the range plus its 1m lookback for each step. With one model the absolute gap is small; "
            "it grows with the number of series the raw expression aggregates and the dashboards that repeat it.",
            f"Expressions: raw = {RAW}; rule = {RECORDED}.",
        ],
    )
