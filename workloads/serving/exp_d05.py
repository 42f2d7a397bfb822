"""Day 5 (Triton basics) on the local tritonserver: instance_group count, HTTP vs gRPC, dynamic batching toggle."""

from __future__ import annotations

from ailab.contract import Column, Context, Output, Series, Table
from workloads.serving import harness
from workloads.serving.common import errors, host_note, lat, load, variant


def instance_groups(ctx: Context) -> Output:
    """instance_group count 1/2/4 -> throughput, p50/p99 and memory (RSS of server + python stubs, MiB)."""
    counts = [int(c) for c in ctx.param("counts", [1, 2, 4])]
    conc = int(ctx.param("concurrency", 16))
    dur = float(ctx.param("duration_s", 5))
    batching = bool(ctx.param("dynamic_batching", False))
    t = Table.of(
        "instance_groups",
        [
            ("instances", ""),
            ("throughput", "req/s"),
            ("p50", "ms"),
            ("p99", "ms"),
            ("server CPU", "cores"),
            ("server RSS", "MiB"),
            ("stubs RSS", "MiB"),
            ("errors", ""),
        ],
        caption=f"MLP, python backend + onnxruntime (1 thread per instance), gRPC closed loop, concurrency {conc}",
    )
    s = Series("throughput_vs_instances", x=Column("instances", ""), y=Column("throughput", "req/s"))
    for n in counts:
        spec = variant("mlp", count=n, batching=batching)
        with harness.serve(ctx.workdir / f"ig{n}", [spec]) as srv:
            res, cpu = load(srv, "mlp", concurrency=conc, warmup_s=1.0, duration_s=dur)
            server_rss, stubs_rss = harness.rss_mib(srv.pid)
        t.add(
            n,
            round(res.throughput_rps, 1),
            lat(res, "p50"),
            lat(res, "p99"),
            round(cpu, 2),
            round(server_rss, 1),
            round(stubs_rss, 1),
            errors(res),
        )
        s.point("lab loadgen", n, res.throughput_rps)
        ctx.log(f"instances {n}: {res.throughput_rps:.0f} req/s")
    out = Output(tables=[t], series=[s])
    out.notes += [
        host_note(),
        "Each instance is a separate triton_python_backend_stub process with its own onnxruntime session; "
        "on a 2-core CPU host more instances add memory but little throughput once both cores are busy. "
        "GPU memory per instance (the curriculum's wording) needs KIND_GPU on a GPU host.",
    ]
    return out


def http_vs_grpc(ctx: Context) -> Output:
    """HTTP vs gRPC at several concurrencies: latency, throughput, client (generator) CPU and the server's metrics."""
    concs = [int(c) for c in ctx.param("concurrency", [64, 256, 1024])]
    dur = float(ctx.param("duration_s", 4))
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
    with harness.serve(ctx.workdir, [variant("mlp", preferred=(8, 16), delay_us=1000)]) as srv:
        for proto in ("http", "grpc"):
            for c in concs:
                res, cpu = load(srv, "mlp", protocol=proto, concurrency=c, warmup_s=1.0, duration_s=dur, timeout_s=30)
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
    return Output(tables=[t], series=[s], notes=[host_note()])


def dynamic_batching(ctx: Context) -> Output:
    """dynamic_batching off vs on with preferred_batch_size 4/8/16: p50/p99, throughput, average batch size."""
    prefs = [int(p) for p in ctx.param("preferred", [4, 8, 16])]
    delay_us = int(ctx.param("max_queue_delay_us", 1000))
    conc = int(ctx.param("concurrency", 32))
    dur = float(ctx.param("duration_s", 4))
    specs = [variant("mlp_off", batching=False)] + [
        variant(f"mlp_p{p}", preferred=(p,), delay_us=delay_us) for p in prefs
    ]
    t = Table.of(
        "dynamic_batching",
        [
            ("dynamic batching", ""),
            ("preferred batch", ""),
            ("throughput", "req/s"),
            ("p50", "ms"),
            ("p99", "ms"),
            ("avg batch", ""),
            ("errors", ""),
        ],
        caption=f"gRPC closed loop, concurrency {conc}, max_queue_delay {delay_us} µs; avg batch = "
        "nv_inference_count / nv_inference_exec_count",
    )
    with harness.serve(ctx.workdir, specs) as srv:
        for spec in specs:
            res, _ = load(srv, spec.name, concurrency=conc, warmup_s=1.0, duration_s=dur)
            db = spec.dynamic_batching
            pref = str(db.preferred_batch_sizes[0]) if db and db.preferred_batch_sizes else "-"
            t.add(
                "on" if db else "off",
                pref,
                round(res.throughput_rps, 1),
                lat(res, "p50"),
                lat(res, "p99"),
                round(res.server.get("avg_batch", 0), 2),
                errors(res),
            )
    return Output(tables=[t], notes=[host_note()])
