"""Client batch size x concurrency curves (d32.e2): p50/p95/p99, inferences/s and the server's queue/compute split,
measured by the lab generator and/or perf_analyzer."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field

from ailab.contract import Column, Context, Output, Params, Series, Table
from workloads.serving.experiments import BatchSize, Concurrencies, PaRequests, Protocol, Seconds


class BatchCurvesParams(Params):
    batch: Annotated[list[BatchSize], Field(min_length=1)] = Field(default=[1, 16, 64], description="client batch")
    concurrency: Concurrencies = Field(default=[1, 4, 16])
    driver: Literal["lab", "perf_analyzer", "both"] = "both"
    protocol: Protocol = "grpc"
    duration_s: Seconds = 3.0
    pa_request_count: PaRequests = 200


def batch_curves(ctx: Context, p: BatchCurvesParams) -> Output:
    """batch 1/16/64 x concurrency: p50/p95/p99, inferences/s and the server's queue/compute split."""
    from workloads.serving import harness, loadgen, perf
    from workloads.serving.common import host_note, lat, load, pa, variant

    at_start = host_note()
    proto = p.protocol
    cols = [
        ("driver", ""),
        ("batch", ""),
        ("concurrency", ""),
        ("throughput", "infer/s"),
        ("p50", "ms"),
        ("p95", "ms"),
        ("p99", "ms"),
        ("server queue", "ms/req"),
        ("server compute", "ms/req"),
    ]
    t = Table.of("batch_curves", cols, caption=f"MLP without dynamic batching (client batches), {proto}")
    failed: list[str] = []
    s = Series("throughput_vs_p99", x=Column("p99", "ms"), y=Column("throughput", "infer/s"), kind="line")
    with harness.serve(ctx, [variant("mlp", batching=False)]) as srv:
        for b in p.batch:
            for c in p.concurrency:
                if p.driver in ("lab", "both"):
                    inputs = {"input": loadgen.default_inputs(b)["input"]}
                    r, _ = load(
                        srv,
                        "mlp",
                        protocol=proto,
                        concurrency=c,
                        batch=b,
                        inputs=inputs,
                        warmup_s=0.5,
                        duration_s=p.duration_s,
                    )
                    sv = r.server
                    t.add(
                        "lab",
                        b,
                        c,
                        round(r.throughput_ips, 1),
                        lat(r, "p50"),
                        lat(r, "p95"),
                        lat(r, "p99"),
                        round(sv.get("queue_us", 0) / 1e3, 3),
                        round(sv.get("compute_us", 0) / 1e3, 3),
                    )
                    s.point(f"lab b={b}", r.latency_ms["p99"], r.throughput_ips)
                if p.driver in ("perf_analyzer", "both"):
                    try:
                        res, _, _ = pa(srv, "mlp", proto, c, b, p.pa_request_count, ctx.workdir / "pa")
                    except perf.PerfAnalyzerError as exc:
                        failed.append(f"perf_analyzer batch {b} concurrency {c}: {str(exc).splitlines()[-1]}")
                        continue
                    t.add(
                        "perf_analyzer",
                        b,
                        c,
                        round(res.throughput_ips, 1),
                        round(res.p50_ms, 3),
                        round(res.p95_ms, 3),
                        round(res.p99_ms, 3),
                        round(res.server_queue_ms, 3),
                        round(res.server_compute_ms, 3),
                    )
                    s.point(f"perf_analyzer b={b}", res.p99_ms, res.throughput_ips)
                ctx.log(f"batch {b} concurrency {c} done")
    return Output(tables=[t], series=[s], notes=[at_start, *failed])
