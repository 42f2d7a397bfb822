"""Trace-id exemplars on the load generator's latency histogram, read back through Prometheus' API (d13.e2)."""

from __future__ import annotations

import time

from pydantic import Field

from ailab.contract import Context, Output, Params, Substitute, Table
from workloads.observability.metering import metered_traffic
from workloads.observability.stack import observed_platform

NO_TRACING_BACKEND = Substitute(
    instead_of="exemplars linked into a distributed-tracing pipeline",
    used="the trace ids the exemplars carry, read back through Prometheus' exemplar API (the link ends there)",
    why="no tracing backend or OTLP collector can be installed here, and Triton 2.51 joins an incoming "
    "traceparent only in OpenTelemetry mode, which exports to such a collector",
)


class ExemplarParams(Params):
    window_s: float = Field(default=20, gt=0, description="traffic window whose exemplars are read, s")
    rps: float = Field(default=30, gt=0, description="load generator rate, req/s")


def exemplars(ctx: Context, p: ExemplarParams) -> Output:
    """Exemplars per latency bucket through /api/v1/query_exemplars, with the slowest one's trace id."""
    t = Table.of(
        "exemplars through /api/v1/query_exemplars",
        [("bucket (le)", "s"), ("exemplars", "exemplars"), ("slowest exemplar", "ms"), ("its trace_id", "")],
    )
    with (
        observed_platform(ctx.platform, ctx.workdir / "stack", services=["triton", "exporter", "prometheus"]) as s,
        metered_traffic(s, rps=p.rps, workers=3),
    ):
        t0 = time.time()
        time.sleep(p.window_s)
        found = s.prom.exemplars("lab_loadgen_request_duration_seconds_bucket", t0, time.time())
    total = 0
    for series in sorted(found, key=lambda x: float(x["seriesLabels"].get("le", "inf").replace("+Inf", "inf"))):
        ex = series["exemplars"]
        total += len(ex)
        slow = max(ex, key=lambda e: float(e["value"]))
        t.add(series["seriesLabels"].get("le"), len(ex), round(float(slow["value"]) * 1000, 2),
              slow["labels"]["trace_id"])  # fmt: skip
    return Output(
        tables=[t],
        notes=[
            f"{total} exemplars returned for {p.window_s:.0f} s of traffic. Each request also carried a W3C "
            "traceparent with the same trace id, so a tracing backend would show that request's spans.",
            "Not done here: Triton 2.51 only joins an incoming traceparent in --trace-config mode=opentelemetry, "
            "which exports to an OTLP collector this machine does not run; the link stops at the client's trace id.",
        ],
        substitute=NO_TRACING_BACKEND,
    )
