"""perf_analyzer (tritonclient 2.51) on the local tritonserver: P50/P95/P99 latency curves over concurrency
(d32.e4), and model-config changes measured against a baseline in one run (d32.e5). Percentiles are
perf_analyzer's own (exact, over every request of its stable windows)."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field

from ailab.contract import Column, Context, Output, Params, Series, Table
from workloads.serving.experiments import Concurrencies, Int, PaRequests

Variant = Literal["baseline", "instances_2", "preferred_8_16", "queue_delay_2ms", "instances_2_preferred_8_16"]
VARIANTS = {  # name -> (what changed against the baseline, common.variant keywords)
    "baseline": ("1 instance, no dynamic batching", {"batching": False}),
    "instances_2": ("instance_group count 2", {"batching": False, "count": 2}),
    "preferred_8_16": ("dynamic_batching preferred_batch_size [8, 16], no queue delay", {"preferred": (8, 16)}),
    "queue_delay_2ms": (
        "dynamic_batching preferred_batch_size [8, 16], max_queue_delay 2000 µs",
        {"preferred": (8, 16), "delay_us": 2000},
    ),
    "instances_2_preferred_8_16": (
        "instance_group count 2 + dynamic_batching preferred_batch_size [8, 16]",
        {"preferred": (8, 16), "count": 2},
    ),
}


class CurveParams(Params):
    concurrency: Concurrencies = Field(default=[1, 2, 4, 8, 16, 32], description="perf_analyzer concurrency sweep")
    batch: Annotated[Int, Field(ge=1, le=64)] = 1
    pa_request_count: PaRequests = 300
    variant: Variant = Field(default="preferred_8_16", description="the model config measured")


def latency_curves(ctx: Context, p: CurveParams) -> Output:
    """perf_analyzer at each concurrency: p50/p90/p95/p99 and throughput, as curves."""
    from workloads.serving import harness
    from workloads.serving.common import host_note, pa, variant

    at_start = host_note()
    what, kw = VARIANTS[p.variant]
    spec = variant("mlp", **kw)
    t = Table.of(
        "perf_analyzer",
        [
            ("concurrency", ""),
            ("throughput", "infer/s"),
            ("p50", "ms"),
            ("p90", "ms"),
            ("p95", "ms"),
            ("p99", "ms"),
            ("p99/p50", "x"),
            ("server queue", "ms"),
            ("server compute", "ms"),
            ("perf_analyzer CPU", "cores"),
            ("server CPU", "cores"),
        ],
        caption=f"model: the Day-3 MLP, {what}; gRPC, batch {p.batch}, count_windows of {p.pa_request_count} requests "
        "(perf_analyzer's p50/p90/p95/p99 over its stable windows)",
    )
    pct = Series("percentiles_vs_concurrency", x=Column("concurrency", ""), y=Column("latency", "ms"), log_x=True)
    thr = Series("throughput_vs_p99", x=Column("p99", "ms"), y=Column("throughput", "infer/s"))
    with harness.serve(ctx, [spec]) as srv:
        for c in p.concurrency:
            r, pa_cpu, srv_cpu = pa(srv, "mlp", "grpc", c, p.batch, p.pa_request_count, ctx.workdir / "pa")
            t.add(
                c,
                round(r.throughput_ips, 1),
                round(r.p50_ms, 3),
                round(r.p90_ms, 3),
                round(r.p95_ms, 3),
                round(r.p99_ms, 3),
                round(r.p99_ms / r.p50_ms, 2) if r.p50_ms else "-",
                round(r.server_queue_ms, 3),
                round(r.server_compute_ms, 3),
                round(pa_cpu, 2),
                round(srv_cpu, 2),
            )
            for name, v in (("p50", r.p50_ms), ("p95", r.p95_ms), ("p99", r.p99_ms)):
                pct.lines.setdefault(name, []).append([c, round(v, 3)])
            thr.lines.setdefault("perf_analyzer", []).append([round(r.p99_ms, 3), round(r.throughput_ips, 1)])
    notes = [at_start, "perf_analyzer and the server share the host's 2 cores: its own CPU is in the table."]
    return Output(tables=[t], series=[pct, thr], notes=notes)


class ConfigChangeParams(Params):
    variants: Annotated[list[Variant], Field(min_length=2)] = Field(
        default=["baseline", "instances_2", "preferred_8_16", "queue_delay_2ms", "instances_2_preferred_8_16"],
        description="model configs compared; the first is the baseline the ratios refer to",
    )
    concurrency: Annotated[Int, Field(ge=1, le=1024)] = 16
    pa_request_count: PaRequests = 300
    rounds: Annotated[Int, Field(ge=1, le=5)] = Field(
        default=2, description="passes over the variants (interleaved, so host load drifts hit all alike)"
    )


def config_change(ctx: Context, p: ConfigChangeParams) -> Output:
    """Each config variant served side by side by one server; perf_analyzer on each in turn (interleaved rounds);
    throughput and p50/p95/p99, with ratios to the baseline, and the config lines that changed."""
    import difflib

    from workloads.serving import harness, metrics
    from workloads.serving.common import host_note, pa, variant

    at_start = host_note()
    names = list(dict.fromkeys(p.variants))
    specs = [variant(n, **VARIANTS[n][1]) for n in names]
    runs: dict[str, list] = {n: [] for n in names}
    with harness.serve(ctx, specs) as srv:
        texts = {n: (srv.repo / n / "config.pbtxt").read_text().replace(f'"{n}"', '"<name>"') for n in names}
        for _ in range(p.rounds):
            for n in names:
                m0 = metrics.read(srv.metrics_url, n)
                r, pa_cpu, srv_cpu = pa(srv, n, "grpc", p.concurrency, 1, p.pa_request_count, ctx.workdir / "pa")
                d = metrics.read(srv.metrics_url, n) - m0
                runs[n].append((r, d.avg_batch, srv_cpu, pa_cpu))
    t = Table.of(
        "config_change",
        [
            ("variant", ""),
            ("change against baseline", ""),
            ("round", ""),
            ("throughput", "infer/s"),
            ("p50", "ms"),
            ("p95", "ms"),
            ("p99", "ms"),
            ("avg batch (server)", ""),
            ("server CPU", "cores"),
            ("perf_analyzer CPU", "cores"),
            ("throughput / baseline", "x"),
            ("p99 / baseline", "x"),
        ],
        caption=f"perf_analyzer, gRPC, concurrency {p.concurrency}, batch 1, count_windows of {p.pa_request_count}; "
        "ratios against the baseline's measurement of the same round; avg batch = nv_inference_count / "
        "nv_inference_exec_count over the run",
    )
    base = names[0]
    for k in range(p.rounds):
        b = runs[base][k][0]
        for n in names:
            r, avg_batch, srv_cpu, pa_cpu = runs[n][k]
            t.add(
                n,
                VARIANTS[n][0] if n != base else "(baseline)",
                k + 1,
                round(r.throughput_ips, 1),
                round(r.p50_ms, 3),
                round(r.p95_ms, 3),
                round(r.p99_ms, 3),
                round(avg_batch, 2),
                round(srv_cpu, 2),
                round(pa_cpu, 2),
                round(r.throughput_ips / b.throughput_ips, 3),
                round(r.p99_ms / b.p99_ms, 3),
            )
    diffs = Table.of(
        "config_diff",
        [("variant", ""), ("config.pbtxt lines changed against the baseline", "")],
        caption="unified diff of the generated config.pbtxt files (model name masked)",
    )
    for n in names[1:]:
        lines = [
            ln
            for ln in difflib.unified_diff(texts[base].splitlines(), texts[n].splitlines(), lineterm="", n=0)
            if ln[:1] in "+-" and not ln.startswith(("+++", "---"))
        ]
        diffs.add(n, "; ".join(x.strip() for x in lines))
    notes = [at_start, "Every variant is the same Day-3 MLP on the python backend; only config.pbtxt differs."]
    return Output(tables=[t, diffs], notes=notes)
