"""Where an ensemble request's time goes: CPU pre-processing against the model and softmax from Triton's per-model
counters (d17.e3), and each step's latency through the Triton dashboard's panel queries on a live Prometheus
(d17.e5 Grafana, d38.e5 Prometheus)."""

from __future__ import annotations

import time
from typing import Annotated, Literal

from pydantic import Field, Strict

from ailab.contract import Column, Context, Output, Params, Series, Substitute, Table, durations
from workloads.serving.experiments import ScrapeInterval

Seconds = Annotated[float, Strict(), Field(gt=0, le=600, description="measured window per run, s")]
Warmup = Annotated[
    float,
    Strict(),
    Field(ge=0, le=60, description="the load generator's unmeasured lead-in before each measured window, s"),
]
Concurrency = Annotated[int, Strict(), Field(ge=1, le=256, description="closed-loop requests in flight")]
STEPS = ("normalize", "mlp", "softmax")


class PreprocessParams(Params):
    batches: Annotated[list[Annotated[int, Strict(), Field(ge=1, le=64)]], Field(min_length=1)] = Field(
        default=[1, 16], description="images per request"
    )
    concurrency: Concurrency = 4
    duration_s: Seconds = 5.0
    warmup_s: Warmup = 1.0
    client_repeats: Annotated[int, Strict(), Field(ge=10, le=100_000)] = 2000


def _client_preprocess_us(batch: int, repeats: int) -> float:
    """Median µs of the lab's own preprocess() on `batch` raw images in this process (numpy, one core)."""
    import numpy as np

    from workloads.ensembles.pipeline import raw_images
    from workloads.models.data import preprocess

    x = raw_images(batch)
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        preprocess(x)
        times.append((time.perf_counter() - t0) * 1e6)
    return float(np.median(times))


def preprocess_time(ctx: Context, p: PreprocessParams) -> Output:
    """Per-step server time (queue, compute) of the pipeline at batch 1 and 16, the pre-processing step's share of
    the ensemble's request time, and the same pre-processing timed in the client for comparison."""
    from workloads.ensembles import measure
    from workloads.ensembles.pipeline import pipeline_specs
    from workloads.serving import harness
    from workloads.serving.common import errors, host_note, lat

    at_start = host_note()
    t = Table.of(
        "step_times",
        [("batch", "images/req"), ("step", ""), ("requests", ""), ("queue", "µs/req"), ("compute input", "µs/req"),
         ("compute infer", "µs/req"), ("compute output", "µs/req"), ("share of ensemble time", "%")],
        caption="Triton's per-model counters (nv_inference_queue_duration_us, nv_inference_compute_*_duration_us "
        "over nv_inference_request_success) diffed around each run, warm-up included; share = the step's queue "
        "+ compute over the ensemble's nv_inference_request_duration_us per request",
    )  # fmt: skip
    e2e = Table.of(
        "runs",
        [("batch", "images/req"), ("throughput", "req/s"), ("p50", "ms"), ("p99", "ms"),
         ("ensemble server time", "µs/req"), ("pre-processing in the client", "µs/req"), ("host CPU busy", "%"),
         ("errors", "")],
        caption=f"lab load generator on the ensemble, gRPC closed loop, concurrency {p.concurrency}, "
        f"{p.duration_s:g} s; client pre-processing = median of {p.client_repeats} calls of "
        "workloads.models.data.preprocess on the same batch in this process",
    )  # fmt: skip
    share = Series("pre-processing share", Column("batch", "images/req"), Column("share of ensemble time", "%"))
    with harness.serve(ctx, pipeline_specs(post=False, fused=False), warm_requests=0) as srv:
        measure.warm(srv, ["pipeline"])
        for b in p.batches:
            r = measure.run(srv, "pipeline", ["pipeline", *STEPS], batch=b, concurrency=p.concurrency,
                            warmup_s=p.warmup_s, duration_s=p.duration_s)  # fmt: skip
            ens_us = r.steps["pipeline"].per_request_us("request_us")
            for s in STEPS:
                c = r.steps[s]
                own = c.per_request_us("queue_us") + c.per_request_us("compute_us")
                pct = round(100 * own / ens_us, 1) if ens_us else float("nan")
                t.add(b, s, int(c.request_success), measure.us_per_request(c, "queue_us"),
                      measure.us_per_request(c, "compute_input_us"), measure.us_per_request(c, "compute_infer_us"),
                      measure.us_per_request(c, "compute_output_us"), pct)  # fmt: skip
                if s == "normalize":
                    share.point("normalize", b, pct)
            res = r.result
            e2e.add(b, round(res.throughput_rps, 1), lat(res, "p50"), lat(res, "p99"), round(ens_us, 1),
                    round(_client_preprocess_us(b, p.client_repeats), 1), round(100 * res.host_cpu_busy, 1),
                    errors(res))  # fmt: skip
    notes = [
        at_start,
        "normalize runs the lab's training preprocessing (scale 0..16 to 0..1, bilinear upsampling 8x8 -> 28x28) "
        "in numpy inside a python-backend model; its 'compute infer' is the numpy work plus the python backend's "
        "request handling, 'compute input/output' the tensor copies to and from the stub. Compare it with the "
        "client-side time of the same function: the difference is what running the step in Triton costs.",
    ]
    return Output(tables=[e2e, t], series=[share], notes=notes)


class StepMetricsParams(Params):
    concurrency: Concurrency = 4
    duration_s: Seconds = 20.0
    scrape_interval: ScrapeInterval = "1s"
    view: Literal["grafana", "prometheus"] = Field(
        default="prometheus", description="what the curriculum asks to watch it in (grafana: labelled a substitute)"
    )
    settle: Literal["two_scrapes", "next_scrape"] = Field(
        default="two_scrapes",
        description="how the run waits for Prometheus before and after the load: a fixed two scrape intervals (what "
        "the full runs were measured with) or until a scrape taken after that moment is in (quick)",
    )


PANEL = "Queue vs compute time per request"
LATENCY_PANEL = "Average request latency (server)"


def step_metrics(ctx: Context, p: StepMetricsParams) -> Output:
    """Load the ensemble (with the python post-processing step) while Prometheus scrapes Triton; evaluate the
    Triton dashboard's per-model panels for every step and cross-check them with Triton's counters."""
    from workloads.ensembles import measure
    from workloads.ensembles.pipeline import pipeline_specs
    from workloads.multimodel.observe import evaluate, observed, panel_queries, range_by_model, settled
    from workloads.serving import loadgen, metrics
    from workloads.serving.common import errors, host_note, lat

    at_start = host_note()
    models = ["pipeline_post", "normalize", "mlp", "softmax", "topk"]
    (queue_q, _), (compute_q, _) = panel_queries(PANEL)
    ((latency_q, _),) = panel_queries(LATENCY_PANEL)
    with observed(ctx, pipeline_specs(fused=False), scrape_interval=p.scrape_interval) as (srv, prom):
        scrape_s = durations.seconds(p.scrape_interval)
        measure.warm(srv, ["pipeline_post"])
        settled(prom, p.settle, scrape_s)
        before = {m: metrics.read(srv.metrics_url, m) for m in models}
        t0 = time.time()
        res = loadgen.run(
            loadgen.LoadSpec(url=srv.address("grpc"), model="pipeline_post", concurrency=p.concurrency,
                             warmup_s=0.0, duration_s=p.duration_s, inputs=measure.inputs_for("pipeline_post", 1))
        )  # fmt: skip
        t1 = time.time()
        after = {m: metrics.read(srv.metrics_url, m) for m in models}
        at = settled(prom, p.settle, scrape_s)
        window = at - t0
        values = {name: evaluate(prom, q, window, at, scrape_s) for name, q in
                  (("latency", latency_q), ("queue", queue_q), ("compute", compute_q))}  # fmt: skip
        curves = range_by_model(prom, compute_q, t0, t1, step_s=1.0, rate_window_s=5)
        shots = _panel_pictures(ctx, prom.url, models, t0, at) if p.view == "grafana" else []
    t = Table.of(
        "per_step_latency",
        [("model", ""), ("role", ""), ("request time (panel)", "µs/req"), ("queue (panel)", "µs/req"),
         ("compute infer (panel)", "µs/req"), ("compute infer (Triton counters)", "µs/req"),
         ("panel / counters", "x"), ("requests (counters)", "")],
        caption=f"'panel' = the queries of the panels '{LATENCY_PANEL}' and '{PANEL}' in "
        f"dashboards/grafana/triton.json, $__rate_interval = the {window:.0f} s since the load started, run on "
        "Prometheus' query API; 'counters' = Triton's metrics page read directly before and after the load",
    )  # fmt: skip
    for m in models:
        d = after[m] - before[m]
        direct = d.per_request_us("compute_infer_us")
        panel = values["compute"].get(m)
        t.add(m, "ensemble" if m == "pipeline_post" else "step", _r(values["latency"].get(m)),
              _r(values["queue"].get(m)), _r(panel), round(direct, 1),
              round(panel / direct, 3) if panel and direct else float("nan"), int(d.request_success))  # fmt: skip
    s = Series("compute time per request over the run", Column("time since load start", "s"),
               Column("compute infer", "µs/req"))  # fmt: skip
    for m, pts in sorted(curves.items()):
        if m in models:
            for x, y in pts:
                s.point(m, x, round(y, 1))
    run = Table.of("load", [("model", ""), ("concurrency", ""), ("throughput", "req/s"), ("p50", "ms"),
                            ("p99", "ms"), ("host CPU busy", "%"), ("errors", "")],
                   caption=f"lab load generator, gRPC closed loop, {p.duration_s:g} s, 1 image a request")  # fmt: skip
    run.add("pipeline_post", p.concurrency, round(res.throughput_rps, 1), lat(res, "p50"), lat(res, "p99"),
            round(100 * res.host_cpu_busy, 1), errors(res))  # fmt: skip
    empty = [m for m in models if values["compute"].get(m) is None]
    notes = [
        at_start,
        f"Panel queries without data: {empty}." if empty else "Every step's panel query returned data.",
        "Triton reports the ensemble itself (request time, no compute of its own) and each composing model as "
        "separate `model` label values, so one panel shows every step.",
    ]
    sub = None
    if p.view == "grafana":
        sub = Substitute(
            instead_of="a Grafana dashboard",
            used="the generated Grafana dashboard's panel queries (dashboards/grafana/triton.json) evaluated on a "
            "live Prometheus scraping tritonserver",
            why="no Grafana server can be installed here (no apt, PyPI or npm package); the panel JSON is what "
            "Grafana would load",
        )
    artifacts = {f"Grafana panel: {sh.title}": str(sh_path) for sh, sh_path in shots}
    if shots:
        pics = Table.of(
            "panel_pictures",
            [("panel", ""), ("series", ""), ("points", ""), ("unit", ""), ("query error", "")],
            caption="the panels drawn as Grafana would show them: each panel's own queries run with query_range "
            "on the same Prometheus over the load window by workloads/telemetry/snapshot.py ($model = the five "
            "models); the pictures are this result's artifacts, embedded below",
        )
        for sh, _ in shots:
            pics.add(sh.title, len(sh.lines), sh.points, sh.unit, sh.error or "none")
        tables = [run, t, pics]
        if empty_pics := [sh.title for sh, _ in shots if not sh.lines]:
            notes.append(f"Panel pictures without data: {empty_pics}.")
    else:
        tables = [run, t]
    return Output(tables=tables, series=[s], notes=notes, substitute=sub, artifacts=artifacts)


def _panel_pictures(ctx: Context, prom_url: str, models: list[str], start: float, end: float) -> list:
    """The two per-step panels of the Triton dashboard rendered to PNG from the live Prometheus, [(shot, path)].

    A quick run draws into its own folder, so it never replaces the pictures of the measured full run."""
    import json

    from workloads.multimodel.observe import DASHBOARD
    from workloads.telemetry import snapshot

    out = ctx.workdir / ("panels-quick" if ctx.quick else "panels")
    dashboard = json.loads(DASHBOARD.read_text())
    model_re = "|".join(models)
    shots = snapshot.snapshot(dashboard, prom_url, out, start, end, {"model": model_re}, [LATENCY_PANEL, PANEL])
    return [(sh, out / sh.png) for sh in shots]


def _r(v: float | None) -> float | str:
    return round(v, 1) if v is not None else "no data"
