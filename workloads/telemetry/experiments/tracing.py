"""d76.e3: a request's path through Triton from its own trace (`--trace-config` triton mode, level TIMESTAMPS, every
request traced): receive, queue, compute input, infer, compute output, send — as a Gantt chart for a single model
and for the ensemble normalize -> linear (whose steps are child traces), and per-stage percentiles over many
requests."""

from __future__ import annotations

import math
import os
from typing import Annotated

from pydantic import Field

from ailab.contract import Column, Context, Output, Params, Series, Table
from workloads.telemetry import repository, traces
from workloads.telemetry.stack import infer, telemetry_platform


class TracingParams(Params):
    requests: Annotated[int, Field(ge=5, le=10_000)] = Field(default=200, description="traced requests per model")
    warmup: Annotated[int, Field(ge=0, le=100)] = Field(default=5, description="untraced-in-the-tables requests first")


def _pct(xs: list[float], q: float) -> float:
    """Nearest-rank percentile (the lab's definition)."""
    s = sorted(xs)
    return s[max(0, math.ceil(q / 100 * len(s)) - 1)]


def _gantt(name: str, root: traces.Trace) -> Series:
    """One lane per (model, stage), x in µs from the request's first timestamp."""
    t0 = min(root.timestamps.values())
    s = Series(name, Column("time since the request arrived", "µs"), Column("stage", ""), kind="timeline")
    for model, stage, a, b in traces.lanes(root):
        s.lines.setdefault(f"{model} · {stage}", []).append([round((a - t0) / 1e3, 1), round((b - t0) / 1e3, 1)])
    return s


def request_trace(ctx: Context, p: TracingParams) -> Output:
    """Trace every request to `linear` and to the ensemble `pipeline`; chart the median request of each."""
    la = os.getloadavg()
    trace_opt = {"rate": 1, "level": "TIMESTAMPS", "log_frequency": 1}
    roots: dict[str, list[traces.Trace]] = {}
    with telemetry_platform(
        ctx.platform, ctx.workdir / "stack", trace=trace_opt, services=["triton"], log_verbose=0
    ) as s:
        assert s.trace_file is not None
        for model, children in ((repository.SINGLE, 0), (repository.ENSEMBLE, 2)):
            ids = [f"{model}-{i:05d}" for i in range(p.warmup + p.requests)]
            for rid in ids:
                status = infer(s.triton, model, rid)
                if status != 200:
                    raise RuntimeError(f"request {rid} to {model}: HTTP {status}")
            last = traces.wait_for(s.trace_file, ids[-1], children)
            assert last.request_id == ids[-1]
            found = {
                t.request_id: t for t in traces.read(traces.trace_files(s.trace_file)).values() if t.parent_id is None
            }
            roots[model] = [found[r] for r in ids[p.warmup :] if r in found]
    stages = Table.of(
        "stage_durations",
        [("model", ""), ("step", ""), ("stage", ""), ("traces", ""), ("p50", "µs"), ("p99", "µs"), ("mean", "µs")],
        caption="Per traced request, each stage's duration from Triton's own timestamps; `step` is the ensemble "
        "step's model (the ensemble's own trace has no compute stages: its steps do the work).",
    )
    series = []
    traced = Table.of(
        "traced", [("model", ""), ("requests_sent", ""), ("traces_found", ""), ("children_per_trace", "")]
    )
    for model, rs in roots.items():
        traced.add(model, p.requests, len(rs), round(sum(len(r.children) for r in rs) / max(len(rs), 1), 2))
        per: dict[tuple[str, str], list[float]] = {}
        for r in rs:
            for step_model, stage, a, b in traces.lanes(r):
                per.setdefault((step_model, stage), []).append((b - a) / 1e3)
        for (step_model, stage), xs in per.items():
            stages.add(model, step_model, stage, len(xs), round(_pct(xs, 50), 1), round(_pct(xs, 99), 1),
                       round(sum(xs) / len(xs), 1))  # fmt: skip
        if rs:  # the median request by its whole time in the server
            dur = sorted(rs, key=lambda r: r.spans().get("request", (0, 0))[1] - r.spans().get("request", (0, 0))[0])
            med = dur[len(dur) // 2]
            series.append(_gantt(f"{model}: median request {med.request_id}", med))
    notes = [
        f"host: {os.cpu_count()} cores, load average {la[0]:.1f}/{la[1]:.1f}/{la[2]:.1f} (1/5/15 min) at start",
        "tracing: tritonserver 2.51 --trace-config mode=triton, rate=1 (every request), level=TIMESTAMPS, "
        "log-frequency=1, file under the state dir (the lab's triton.trace option); stages as Triton's trace "
        "documentation defines them (queue = QUEUE_START..COMPUTE_START, infer = COMPUTE_INPUT_END.."
        "COMPUTE_OUTPUT_START, ...); the ensemble's steps are child traces linked by parent_id.",
        "models: python-backend `linear` (16x16 matmul) and the ensemble `pipeline` = normalize -> linear, built by "
        "workloads/telemetry/repository.py; requests sent one at a time over HTTP, so queue time is the scheduler's "
        "own overhead, not waiting behind other requests.",
    ]
    return Output(tables=[traced, stages], series=series, notes=notes)
