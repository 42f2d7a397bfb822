"""d18.e3: a large and a small model in one tritonserver on a 2-core CPU host: the small model's latency and its
jitter alone, then while the large model is kept busy."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field, Strict

from ailab.contract import Column, Context, Output, Params, Series, Table

Seconds = Annotated[float, Strict(), Field(gt=0, le=600, description="measured window per phase, s")]


class JitterParams(Params):
    small_qps: Annotated[float, Strict(), Field(gt=0, le=5000, description="open-loop rate on the small model")] = 50.0
    large_concurrency: Annotated[list[Annotated[int, Strict(), Field(ge=1, le=64)]], Field(min_length=1)] = Field(
        default=[1, 4], description="closed-loop requests in flight on the large model, one phase each"
    )
    large_batch: Annotated[int, Strict(), Field(ge=1, le=64, description="images per large-model request")] = 8
    large_instances: Annotated[int, Strict(), Field(ge=1, le=8)] = 2
    duration_s: Seconds = 10.0


def large_small_jitter(ctx: Context, p: JitterParams) -> Output:
    """Small MLP at a fixed open-loop rate, alone and next to the large MLP under closed-loop load: percentiles,
    jitter (p99 - p50, p99.9 - p50, standard deviation), the large model's throughput, host CPU."""
    from workloads.multimodel import drive
    from workloads.multimodel.models import large, small
    from workloads.serving import harness
    from workloads.serving.common import errors, host_note, lat
    from workloads.serving.modelspec import InstanceGroup
    from workloads.serving.stats import percentile

    at_start = host_note()
    specs = [small("small"), large("large", instance_groups=(InstanceGroup(count=p.large_instances),))]
    t = Table.of(
        "small_model_latency",
        [("phase", ""), ("small p50", "ms"), ("small p99", "ms"), ("small p99.9", "ms"), ("small max", "ms"),
         ("jitter p99-p50", "ms"), ("jitter p99.9-p50", "ms"), ("std", "ms"), ("small served", "req/s"),
         ("large served", "req/s"), ("large p50", "ms"), ("host CPU busy", "%"), ("errors", "")],
        caption=f"small = the Day-3 MLP, open loop {p.small_qps:g} req/s (Poisson), 1 image a request; large = "
        f"784-2048-2048-2048-10 MLP, {p.large_instances} CPU instances, closed loop, {p.large_batch} images a "
        f"request; lab load generator over gRPC, {p.duration_s:g} s per phase, exact nearest-rank percentiles",
    )  # fmt: skip
    cdf = Series("small model latency distribution", Column("percentile", "%"), Column("latency", "ms"))
    ratio = Table.of("jitter_ratio", [("phase", ""), ("p99 / alone p99", "x"), ("jitter / alone jitter", "x")],
                     caption="the small model's p99 and p99 - p50 next to the large one / alone")  # fmt: skip
    with harness.serve(ctx, specs) as srv:
        phases: list[tuple[str, int]] = [("small alone", 0)] + [(f"+ large c={c}", c) for c in p.large_concurrency]
        base: dict[str, float] = {}
        for name, conc in phases:
            streams = [drive.stream(srv, "small", mode="open", qps=p.small_qps, warmup_s=1.0, duration_s=p.duration_s)]
            if conc:
                streams.append(drive.stream(srv, "large", concurrency=conc, batch=p.large_batch, warmup_s=1.0,
                                            duration_s=p.duration_s))  # fmt: skip
            res = drive.together(streams)
            s_res = res[0]
            j = drive.jitter(s_res.samples_ms)
            big = res[1] if conc else None
            t.add(name, lat(s_res, "p50"), lat(s_res, "p99"), lat(s_res, "p99.9"), lat(s_res, "max"),
                  round(j["p99-p50"], 3), round(j["p99.9-p50"], 3), round(j["std"], 3),
                  round(s_res.throughput_rps, 1), round(big.throughput_rps, 1) if big else "-",
                  lat(big, "p50") if big else "-", round(100 * s_res.host_cpu_busy, 1),
                  errors(s_res) + (f"; large {errors(big)}" if big else ""))  # fmt: skip
            if not conc:
                base = {"p99": s_res.latency_ms["p99"], "jit": j["p99-p50"]}
            else:
                ratio.add(name, round(s_res.latency_ms["p99"] / base["p99"], 2),
                          round(j["p99-p50"] / base["jit"], 2) if base["jit"] else float("nan"))  # fmt: skip
            for q in (50, 75, 90, 95, 99, 99.9):
                cdf.point(name, q, round(percentile(sorted(s_res.samples_ms), q), 3))
            ctx.log(f"{name}: small p99 {s_res.latency_ms['p99']:.2f} ms")
    notes = [
        at_start,
        "Both models run on the same two CPU cores: the large model's onnxruntime instances (one thread each) and "
        "the small model compete for them, and the OS scheduler, not Triton, decides who runs. On a GPU the same "
        "experiment measures contention for SMs and memory bandwidth instead (d18.e1 needs one).",
    ]
    return Output(tables=[t, ratio], series=[cdf], notes=notes)
