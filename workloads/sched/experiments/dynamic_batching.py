"""Dynamic batching in front of ONNX Runtime worker processes (d83.e2-e4): batching configurations at the same
offered loads, 1k/5k/10k QPS load tests, and the latency distributions of those runs.

The open-loop generator, bounded queue and batcher are the ones of queueing.py (workloads/sched/batching.py and
qpsload.py); see that module for what is measured and what is not.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

from pydantic import Field

from ailab.contract import Column, Context, Output, Series, Table
from workloads.models.data import sample_inputs
from workloads.sched.batching import BatchConfig
from workloads.sched.experiments.queueing import BatchingConfig, LoadParams, design_note
from workloads.sched.pool import WorkerPool, calibrate, host_note

if TYPE_CHECKING:
    from workloads.sched import qpsload

PERCENTILE_POINTS = (1, 5, 10, 25, 50, 75, 90, 95, 97.5, 99, 99.5, 99.9)
Qps = Annotated[float, Field(ge=1, le=100_000)]
DEFAULT_MODES = [
    BatchingConfig(label="no batching", max_batch_size=1),
    BatchingConfig(label="dynamic", max_batch_size=32, max_queue_delay_us=1000, preferred=[8, 16, 32]),
]


class BatchingParams(LoadParams):
    qps: list[Qps] = Field(default=[500, 3000], min_length=1, description="offered loads, req/s")
    configs: list[BatchingConfig] = Field(min_length=1, description="batching configurations compared")
    cost_batches: list[Annotated[int, Field(ge=1, le=1024)]] = Field(
        default=[1, 2, 4, 8, 16, 32], min_length=1, description="batch sizes of the cost curve"
    )


class QpsParams(LoadParams):
    qps: list[Qps] = Field(default=[1000, 5000, 10000], min_length=1, description="offered loads, req/s")
    modes: list[BatchingConfig] = Field(default=DEFAULT_MODES, min_length=1, description="batching modes compared")


RUN_COLS: list[tuple[str, str]] = [
    ("mode", ""),
    ("target", "req/s"),
    ("achieved", "req/s"),
    ("throughput", "req/s"),
    ("p50", "ms"),
    ("p95", "ms"),
    ("p99", "ms"),
    ("queue p50", "ms"),
    ("formation p50", "ms"),
    ("service p50", "ms"),
    ("avg batch", ""),
    ("rejected", ""),
    ("compute per batch", "ms"),
    ("transport per batch", "ms"),
    ("transport share", "%"),
    ("worker busy", "%"),
    ("front-end CPU", "cores"),
    ("send lag p99", "ms"),
    ("verdict", ""),
]


def _row(t: Table, r: qpsload.QpsRun) -> None:
    run = r.run
    share = 100 * r.transport_req_ms / run.latency_ms["mean"] if run.latency_ms.get("mean") else 0.0
    t.add(
        r.label,
        run.target_qps,
        round(run.achieved_qps, 1),
        round(run.throughput_rps, 1),
        round(run.latency_ms["p50"], 3),
        round(run.latency_ms["p95"], 3),
        round(run.latency_ms["p99"], 3),
        round(r.queue_ms.get("p50", float("nan")), 3),
        round(r.form_ms.get("p50", float("nan")), 3),
        round(r.service_ms.get("p50", float("nan")), 3),
        round(r.avg_batch, 2),
        r.rejected,
        round(r.compute_ms, 3),
        round(r.transport_ms, 3),
        round(share, 1),
        round(100 * r.worker_busy, 1),
        round(run.cpu.front_cores if run.cpu else 0.0, 2),
        round(run.send_lag_ms.get("p99", 0.0), 2),
        run.verdict,
    )


def _configs(raw: list[BatchingConfig], capacity: int) -> list[tuple[str, BatchConfig]]:
    return [(c.label, c.config(capacity)) for c in raw]


def _sweep(
    ctx: Context, p: LoadParams, configs: list[tuple[str, BatchConfig]], qps: list[float]
) -> list[qpsload.QpsRun]:
    from workloads.sched import qpsload

    runs = []
    with WorkerPool(p.workers) as pool:
        for q in qps:
            for label, cfg in configs:
                r = qpsload.load_test(pool, cfg, q, label, p.warmup_s, p.duration_s, p.drain_s, p.seed)
                runs.append(r)
                ctx.log(f"{label} @ {q:g}: {r.run.throughput_rps:.0f} req/s, p99 {r.run.latency_ms['p99']:.1f} ms")
    return runs


def _stall_notes(runs: list[qpsload.QpsRun], capacity: int) -> list[str]:
    """Say, from the run's own numbers, when rejections under batching follow a stall of the shared event loop."""
    notes = []
    for r in runs:
        stall_ms = r.run.send_lag_ms.get("max", 0.0)
        burst = stall_ms * 1e-3 * r.run.target_qps
        if r.rejected and r.cfg.max_batch_size > 1:
            notes.append(
                f"{r.label} @ {r.run.target_qps:g} req/s: {r.rejected} rejected; the longest event-loop stall (send "
                f"lag max) was {stall_ms:.0f} ms, after which ~{burst:.0f} overdue arrivals were emitted at once "
                f"into a queue of {capacity}; the host was shared, so such stalls are not the batcher's doing."
            )
    return notes


def _configs_caption(configs: list[tuple[str, BatchConfig]], p: LoadParams) -> str:
    desc = "; ".join(
        f"{label}: max {c.max_batch_size}, delay {c.max_queue_delay_us} µs"
        + (f", preferred {list(c.preferred_sizes)}" if c.preferred_sizes else "")
        for label, c in configs
    )
    return f"{desc}. Poisson arrivals, {p.duration_s:g} s window after {p.warmup_s:g} s warm-up"


def dynamic_batching(ctx: Context, p: BatchingParams) -> Output:
    """d83.e2: no batching vs dynamic batching configs at the same offered loads; and what a batch costs."""
    configs = _configs(p.configs, p.queue_capacity)
    out = Output(notes=[host_note(), design_note(p)])
    cost = Table.of(
        "batch_cost",
        [("batch", ""), ("compute", "ms"), ("compute per request", "µs"), ("round trip", "ms"),
         ("round trip per request", "µs")],
        caption="One worker alone, means of 100: inference grows sublinearly with the batch, the fixed per-call and "
        "per-message costs are shared by the batch",
    )  # fmt: skip
    cs = Series("cost_per_request", x=Column("batch", ""), y=Column("per request", "µs"), log_x=True, log_y=True)
    images = sample_inputs(max(p.cost_batches))[0]
    with WorkerPool(1) as pool:
        for b in p.cost_batches:
            (c,) = calibrate(pool, images[:b], tasks=100)
            cost.add(b, round(c.compute_s * 1e3, 4), round(c.compute_s * 1e6 / b, 2), round(c.roundtrip_s * 1e3, 4),
                     round(c.roundtrip_s * 1e6 / b, 2))  # fmt: skip
            cs.point("compute", b, c.compute_s * 1e6 / b)
            cs.point("round trip", b, c.roundtrip_s * 1e6 / b)
    t = Table.of("batching", RUN_COLS, caption=_configs_caption(configs, p))
    p99 = Series("p99_by_config", x=Column("offered", "req/s"), y=Column("p99", "ms"), log_y=True)
    thr = Series("throughput_by_config", x=Column("offered", "req/s"), y=Column("throughput", "req/s"))
    for r in _sweep(ctx, p, configs, list(p.qps)):
        _row(t, r)
        p99.point(r.label, r.run.target_qps, r.run.latency_ms["p99"])
        thr.point(r.label, r.run.target_qps, r.run.throughput_rps)
    out.tables += [cost, t]
    out.series += [cs, p99, thr]
    out.notes.append(
        "asyncio timers wake with ~1 ms resolution (epoll), so a max_queue_delay_us below 1000 acts as up to ~1 ms; "
        "the formation column shows the delay requests actually spent waiting for batch-mates."
    )
    return out


def qps_levels(ctx: Context, p: QpsParams) -> Output:
    """d83.e3: 1k/5k/10k QPS offered, no batching vs dynamic batching: achieved, served, latency, rejections."""
    modes = _configs(p.modes, p.queue_capacity)
    out = Output(notes=[host_note(), design_note(p)])
    t = Table.of("qps_levels", RUN_COLS, caption=_configs_caption(modes, p))
    s = Series("throughput_vs_offered", x=Column("offered", "req/s"), y=Column("throughput", "req/s"))
    lat = Series("p99_vs_offered", x=Column("offered", "req/s"), y=Column("p99", "ms"), log_y=True)
    runs = _sweep(ctx, p, modes, list(p.qps))
    for r in runs:
        _row(t, r)
        s.point(r.label, r.run.target_qps, r.run.throughput_rps)
        lat.point(r.label, r.run.target_qps, r.run.latency_ms["p99"])
    out.tables.append(t)
    out.series += [s, lat]
    out.notes += _stall_notes(runs, p.queue_capacity)
    return out


def latency_curves(ctx: Context, p: QpsParams) -> Output:
    """d83.e4: latency distribution (percentile curve and CDF) for each mode and offered load."""
    from workloads.sched import openloop

    modes = _configs(p.modes, p.queue_capacity)
    out = Output(notes=[host_note(), design_note(p)])
    cols = [("mode", ""), ("target", "req/s"), ("answered", "")] + [(f"p{q:g}", "ms") for q in PERCENTILE_POINTS]
    t = Table.of("percentiles", [*cols, ("max", "ms"), ("rejected", "")])
    t.caption = _configs_caption(modes, p) + "; exact nearest-rank percentiles over every answered request"
    pc = Series("percentile_curve", x=Column("percentile", ""), y=Column("latency", "ms"), log_y=True)
    cdf = Series("latency_cdf", x=Column("latency", "ms"), y=Column("fraction of requests", ""), log_x=True)
    runs = _sweep(ctx, p, modes, list(p.qps))
    out.notes += _stall_notes(runs, p.queue_capacity)
    for r in runs:
        label = f"{r.label} @ {r.run.target_qps:g}"
        curve = openloop.percentile_curve(r.samples_ms, PERCENTILE_POINTS)
        values = [round(v, 3) for _, v in curve] or [float("nan")] * len(PERCENTILE_POINTS)
        t.add(r.label, r.run.target_qps, r.run.ok, *values,
              round(r.run.latency_ms["max"], 3), r.rejected)  # fmt: skip
        pc.lines[label] = curve
        cdf.lines[label] = openloop.cdf(r.samples_ms)
    out.tables.append(t)
    out.series += [pc, cdf]
    return out
