"""d18.e3: a large and a small model in one tritonserver on a 2-core CPU host: the small model's latency and its
jitter alone, then while the large model is kept busy."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field, Strict

from ailab.contract import Column, Context, Output, Params, Series, Table
from workloads.multimodel.experiments import AutoComplete, server_args

Seconds = Annotated[float, Strict(), Field(gt=0, le=600, description="measured window per phase, s")]
Warmup = Annotated[float, Strict(), Field(ge=0.1, le=60, description="unmeasured lead-in per stream, s")]


class JitterParams(Params):
    small_qps: Annotated[float, Strict(), Field(gt=0, le=5000, description="open-loop rate on the small model")] = 50.0
    large_concurrency: Annotated[list[Annotated[int, Strict(), Field(ge=1, le=64)]], Field(min_length=1)] = Field(
        default=[1, 4], description="closed-loop requests in flight on the large model, one phase each"
    )
    large_batch: Annotated[int, Strict(), Field(ge=1, le=64, description="images per large-model request")] = 8
    large_instances: Annotated[int, Strict(), Field(ge=1, le=8)] = 2
    duration_s: Seconds = 10.0
    warmup_s: Warmup = 1.0
    repeats: Annotated[int, Strict(), Field(ge=1, le=20, description="rounds of all phases, interleaved")] = 3
    auto_complete_config: AutoComplete = True


def large_small_jitter(ctx: Context, p: JitterParams) -> Output:
    """Small MLP at a fixed open-loop rate, alone and next to the large MLP under closed-loop load: percentiles,
    jitter (p99 - p50, p99.9 - p50, standard deviation), the large model's throughput, host CPU."""
    import numpy as np

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
        [("phase", ""), ("round", ""), ("small p50", "ms"), ("small p99", "ms"), ("small p99.9", "ms"),
         ("small max", "ms"), ("jitter p99-p50", "ms"), ("jitter p99.9-p50", "ms"), ("std", "ms"),
         ("small served", "req/s"), ("large served", "req/s"), ("large p50", "ms"), ("host CPU busy", "%"),
         ("errors", "")],
        caption=f"small = the Day-3 MLP, open loop {p.small_qps:g} req/s (Poisson), 1 image a request; large = "
        f"784-2048-2048-2048-10 MLP, {p.large_instances} CPU instances, closed loop, {p.large_batch} images a "
        f"request; lab load generator over gRPC, {p.duration_s:g} s per phase, exact nearest-rank percentiles; "
        f"{p.repeats} rounds of all phases, interleaved",
    )  # fmt: skip
    cdf = Series("small model latency distribution (all rounds pooled)", Column("percentile", "%"),
                 Column("latency", "ms"))  # fmt: skip
    ratio = Table.of("jitter_ratio", [("phase", ""), ("median p99", "ms"), ("median jitter p99-p50", "ms"),
                                      ("p99 / alone p99", "x"), ("jitter / alone jitter", "x")],
                     caption="medians over the rounds; ratios of the medians to the small model's alone")  # fmt: skip
    with harness.serve(ctx, specs, args=server_args(p.auto_complete_config)) as srv:
        phases: list[tuple[str, int]] = [("small alone", 0)] + [(f"+ large c={c}", c) for c in p.large_concurrency]
        per: dict[str, list[tuple[float, float]]] = {name: [] for name, _ in phases}
        samples: dict[str, list[float]] = {name: [] for name, _ in phases}
        for rnd, (name, conc) in ((r, ph) for r in range(p.repeats) for ph in phases):
            streams = [
                drive.stream(srv, "small", mode="open", qps=p.small_qps, warmup_s=p.warmup_s, duration_s=p.duration_s)
            ]
            if conc:
                streams.append(drive.stream(srv, "large", concurrency=conc, batch=p.large_batch, warmup_s=p.warmup_s,
                                            duration_s=p.duration_s))  # fmt: skip
            res = drive.together(streams)
            s_res = res[0]
            j = drive.jitter(s_res.samples_ms)
            big = res[1] if conc else None
            t.add(name, rnd + 1, lat(s_res, "p50"), lat(s_res, "p99"), lat(s_res, "p99.9"), lat(s_res, "max"),
                  round(j["p99-p50"], 3), round(j["p99.9-p50"], 3), round(j["std"], 3),
                  round(s_res.throughput_rps, 1), round(big.throughput_rps, 1) if big else "-",
                  lat(big, "p50") if big else "-", round(100 * s_res.host_cpu_busy, 1),
                  errors(s_res) + (f"; large {errors(big)}" if big else ""))  # fmt: skip
            per[name].append((s_res.latency_ms["p99"], j["p99-p50"]))
            samples[name] += s_res.samples_ms
            ctx.log(f"round {rnd + 1} {name}: small p99 {s_res.latency_ms['p99']:.2f} ms")
    med = {n: (float(np.median([a for a, _ in v])), float(np.median([b for _, b in v]))) for n, v in per.items()}
    alone = med[phases[0][0]]
    for name, _ in phases:
        m99, mj = med[name]
        ratio.add(name, round(m99, 3), round(mj, 3), round(m99 / alone[0], 2) if alone[0] else float("nan"),
                  round(mj / alone[1], 2) if alone[1] else float("nan"))  # fmt: skip
        pooled = sorted(samples[name])
        for q in (50, 75, 90, 95, 99, 99.9):
            cdf.point(name, q, round(percentile(pooled, q), 3))
    notes = [
        at_start,
        "Both models run on the same two CPU cores: the large model's onnxruntime instances (one thread each) and "
        "the small model compete for them, and the OS scheduler, not Triton, decides who runs. On a GPU the same "
        "experiment measures contention for SMs and memory bandwidth instead (d18.e1 needs one).",
        "Other programs share this host too (see the load average): their bursts land on any phase, which is why "
        "the phases are interleaved over several rounds and compared by their medians.",
    ]
    return Output(tables=[t, ratio], series=[cdf], notes=notes)
