"""What an ensemble costs per request: the pipeline vs one model doing the same work and vs the bare MLP
(d17.e2, d38.e2), and the price of a python post-processing step added to it (d17.e4, d38.e4)."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field, Strict

from ailab.contract import Context, Output, Params, Series, Table

Concurrencies = Annotated[
    list[Annotated[int, Strict(), Field(ge=1, le=256)]], Field(min_length=1, description="closed-loop in flight")
]
Seconds = Annotated[float, Strict(), Field(gt=0, le=600, description="measured window per run, s")]
Warmup = Annotated[
    float,
    Strict(),
    Field(ge=0, le=60, description="the load generator's unmeasured lead-in before each measured window, s"),
]

COLUMNS = [
    ("model", ""), ("concurrency", ""), ("round", ""), ("throughput", "req/s"), ("p50", "ms"), ("p99", "ms"),
    ("server request time", "µs/req"), ("server CPU", "cores"), ("host CPU busy", "%"), ("errors", ""),
]  # fmt: skip


class OverheadParams(Params):
    concurrency: Concurrencies = Field(default=[1, 4, 16])
    duration_s: Seconds = 5.0
    warmup_s: Warmup = 1.0
    batch: Annotated[int, Strict(), Field(ge=1, le=64, description="images per request")] = 1
    repeats: Annotated[int, Strict(), Field(ge=1, le=20, description="rounds of every run, interleaved")] = 1


def _measure(
    ctx: Context, models: list[str], p: OverheadParams, specs: list, step: str | None = None
) -> tuple[Table, dict]:
    import numpy as np

    from workloads.ensembles import measure
    from workloads.serving import harness
    from workloads.serving.common import errors, lat

    t = Table.of(
        "latency",
        COLUMNS,
        caption=f"lab load generator, gRPC closed loop, batch {p.batch}, {p.duration_s:g} s per run after "
        f"{p.warmup_s:g} s warm-up; exact nearest-rank percentiles over every request; server request time = "
        f"nv_inference_request_duration_us / nv_inference_request_success of the model called; {p.repeats} "
        "round(s) of every (concurrency, model) run, interleaved",
    )
    rounds: dict[tuple[str, int], list[dict[str, float]]] = {}
    with harness.serve(ctx, specs, warm_requests=0) as srv:
        measure.warm(srv, models)
        for rnd, c, m in (
            (k, c, m) for k in range(p.repeats) for c in p.concurrency for m in models
        ):  # interleaved: a change of host load hits every model alike
            watch = [m, step] if step else [m]
            r = measure.run(srv, m, watch, batch=p.batch, concurrency=c, warmup_s=p.warmup_s, duration_s=p.duration_s)
            res = r.result
            srv_us = r.steps[m].per_request_us("request_us")
            t.add(m, c, rnd + 1, round(res.throughput_rps, 1), lat(res, "p50"), lat(res, "p99"), round(srv_us, 1),
                  round(r.server_cpu, 2), round(100 * res.host_cpu_busy, 1), errors(res))  # fmt: skip
            one = {"p50": res.latency_ms["p50"], "p99": res.latency_ms["p99"], "rps": res.throughput_rps,
                   "server_us": srv_us}  # fmt: skip
            if step:
                one["step_us"] = r.steps[step].per_request_us("compute_us")
            rounds.setdefault((m, c), []).append(one)
            ctx.log(f"round {rnd + 1} {m} c={c}: {res.throughput_rps:.0f} req/s p50 {res.latency_ms['p50']:.2f} ms")
    # each quantity's median over the rounds (the ratios below are ratios of medians)
    got = {k: {f: float(np.median([o[f] for o in v])) for f in v[0]} for k, v in rounds.items()}
    return t, got


def _series(name: str, got: dict, models: list[str], p: OverheadParams) -> Series:
    from ailab.contract import Column

    s = Series(name, Column("concurrency", ""), Column("p50 latency", "ms"), log_x=True)
    for m in models:
        for c in p.concurrency:
            s.point(m, c, round(got[m, c]["p50"], 3))
    return s


def ensemble_vs_single(ctx: Context, p: OverheadParams) -> Output:
    """The ensemble vs `fused` (the same three steps in one model) vs the bare MLP: latency, throughput, and the
    ensemble's overhead per request as a ratio and a difference from the same run."""
    from workloads.ensembles.pipeline import pipeline_specs
    from workloads.serving.common import host_note

    at_start = host_note()
    models = ["pipeline", "fused", "mlp"]
    t, got = _measure(ctx, models, p, pipeline_specs(post=False))
    ratio = Table.of(
        "ensemble_overhead",
        [("concurrency", ""), ("ensemble / fused p50", "x"), ("ensemble - fused p50", "ms"),
         ("ensemble / fused p99", "x"), ("ensemble / fused throughput", "x"), ("ensemble / bare MLP p50", "x"),
         ("ensemble - fused server time", "µs/req")],
        caption="From the runs above (one server, one run; medians over the rounds): 'fused' does normalize, the "
        "MLP and softmax in one python model, so the difference is what the ensemble scheduler and the two extra "
        "model hops cost",
    )  # fmt: skip
    for c in p.concurrency:
        e, f, m = got["pipeline", c], got["fused", c], got["mlp", c]
        ratio.add(c, round(e["p50"] / f["p50"], 3), round(e["p50"] - f["p50"], 3), round(e["p99"] / f["p99"], 3),
                  round(e["rps"] / f["rps"], 3) if f["rps"] else float("nan"), round(e["p50"] / m["p50"], 3),
                  round(e["server_us"] - f["server_us"], 1))  # fmt: skip
    notes = [
        at_start,
        "Each ensemble step is a separate model: the request's tensors are handed from step to step inside "
        "Triton, and every python-backend step adds a round trip to its stub process over shared memory. At "
        "concurrency above 1 the steps of different requests can run at the same time on different cores, which "
        "one fused model cannot do; compare the throughput ratio across concurrencies.",
    ]
    return Output(tables=[t, ratio], series=[_series("p50 vs concurrency", got, models, p)], notes=notes)


def postprocess_step(ctx: Context, p: OverheadParams) -> Output:
    """The ensemble with and without a python top-k post-processing step: what the extra step costs per request."""
    from workloads.ensembles.pipeline import K, pipeline_specs
    from workloads.serving.common import host_note

    at_start = host_note()
    models = ["pipeline", "pipeline_post"]
    t, got = _measure(ctx, models, p, pipeline_specs(fused=False), step="topk")
    ratio = Table.of(
        "postprocess_cost",
        [("concurrency", ""), ("with / without p50", "x"), ("with - without p50", "ms"), ("with / without p99", "x"),
         ("with / without throughput", "x"), ("with - without server time", "µs/req"),
         ("top-k step compute", "µs/req")],
        caption=f"pipeline_post = pipeline + a python-backend step returning the top {K} classes and their "
        "probabilities (numpy argsort); both from the same run, medians over the rounds",
    )  # fmt: skip
    for c in p.concurrency:
        a, b = got["pipeline_post", c], got["pipeline", c]
        ratio.add(c, round(a["p50"] / b["p50"], 3), round(a["p50"] - b["p50"], 3), round(a["p99"] / b["p99"], 3),
                  round(a["rps"] / b["rps"], 3) if b["rps"] else float("nan"),
                  round(a["server_us"] - b["server_us"], 1), round(a.get("step_us", float("nan")), 1))  # fmt: skip
    notes = [
        at_start,
        "'top-k step compute' is the step model's own nv_inference_compute_{input,infer,output}_duration_us per "
        "request while pipeline_post ran (it includes the python stub round trip); the rest of the difference is "
        "the ensemble scheduler queueing one more step and handing its tensors over.",
    ]
    return Output(tables=[t, ratio], series=[_series("p50 vs concurrency", got, models, p)], notes=notes)
