"""HTTP vs gRPC clients (d05.e3): latency, throughput, client CPU and the server's own metrics per protocol."""

from __future__ import annotations

from pydantic import Field

from ailab.contract import Column, Context, Output, Params, Series, Table
from workloads.serving.experiments import Concurrencies, Seconds


class ProtocolsParams(Params):
    concurrency: Concurrencies = Field(default=[64, 256, 1024], description="closed-loop concurrencies, each protocol")
    duration_s: Seconds = 4.0


def http_vs_grpc(ctx: Context, p: ProtocolsParams) -> Output:
    """HTTP vs gRPC at several concurrencies: latency, throughput, client (generator) CPU and the server's metrics."""
    from workloads.serving import harness
    from workloads.serving.common import errors, host_note, lat, load, variant

    at_start = host_note()
    t = Table.of(
        "http_vs_grpc",
        [
            ("protocol", ""),
            ("concurrency", ""),
            ("throughput", "req/s"),
            ("p50", "ms"),
            ("p99", "ms"),
            ("client CPU", "cores"),
            ("server CPU", "cores"),
            ("server queue", "ms/req"),
            ("server compute", "ms/req"),
            ("avg batch", ""),
            ("errors", ""),
        ],
        caption="MLP with dynamic batching; server columns read back from Triton's /metrics (nv_inference_*)",
    )
    s = Series("p99_vs_concurrency", x=Column("concurrency", ""), y=Column("p99", "ms"), log_x=True)
    with harness.serve(ctx, [variant("mlp", preferred=(8, 16), delay_us=1000)]) as srv:
        for proto in ("http", "grpc"):
            for c in p.concurrency:
                res, cpu = load(
                    srv, "mlp", protocol=proto, concurrency=c, warmup_s=1.0, duration_s=p.duration_s, timeout_s=30
                )
                sv = res.server
                t.add(
                    proto,
                    c,
                    round(res.throughput_rps, 1),
                    lat(res, "p50"),
                    lat(res, "p99"),
                    round(res.generator_cpu, 2),
                    round(cpu, 2),
                    round(sv.get("queue_us", 0) / 1e3, 3),
                    round(sv.get("compute_us", 0) / 1e3, 3),
                    round(sv.get("avg_batch", 0), 2),
                    errors(res),
                )
                s.point(proto, c, res.latency_ms["p99"])
                ctx.log(f"{proto} c={c}: {res.throughput_rps:.0f} req/s")
    return Output(tables=[t], series=[s], notes=[at_start])
