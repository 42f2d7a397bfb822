"""Day 83 runners: a bounded request queue, dynamic batching, 1k/5k/10k QPS load tests and latency distributions.

Requests are single digits sent by an open-loop Poisson generator that shares the front-end's asyncio loop; the
front-end queues them (bounded: full -> rejected), batches them (Triton's rule, workloads/sched/batching.py) and
sends each batch to an ONNX Runtime worker process over a socket pair. All CPU, no tritonserver: the point is the
queue and batcher themselves, measured with the transport to the worker reported separately.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import numpy as np

from ailab.contract import Column, Context, Output, Series, Table
from workloads.models.data import sample_inputs
from workloads.sched import checks, openloop, qpsload
from workloads.sched.batching import BatchConfig
from workloads.sched.pool import WorkerPool, calibrate, default_model

PERCENTILE_POINTS = (1, 5, 10, 25, 50, 75, 90, 95, 97.5, 99, 99.5, 99.9)


def _host_note() -> str:
    la = os.getloadavg()
    return f"host: {os.cpu_count()} cores, load average {la[0]:.1f}/{la[1]:.1f}/{la[2]:.1f} (1/5/15 min) at start"


def _config(raw: Any, where: str, capacity: int) -> tuple[str, BatchConfig]:
    """One batching config from params: {label, max_batch_size, max_queue_delay_us, preferred}; errors name it."""
    keys = {"label", "max_batch_size", "max_queue_delay_us", "preferred"}
    if not isinstance(raw, dict) or "label" not in raw or set(raw) - keys:
        raise ValueError(f"params.{where} {raw!r}: allowed a mapping with label and any of {', '.join(sorted(keys))}")
    try:
        cfg = BatchConfig(
            int(raw.get("max_batch_size", 1)),
            int(raw.get("max_queue_delay_us", 0)),
            tuple(raw.get("preferred", ())),
            capacity,
        )
    except (TypeError, ValueError) as exc:
        raise ValueError(f"params.{where} {raw!r}: {exc}") from None
    return str(raw["label"]), cfg


@dataclass(frozen=True)
class LoadParams:
    workers: int
    capacity: int
    warmup_s: float
    duration_s: float
    drain_s: float
    seed: int


def _load_params(ctx: Context) -> LoadParams:
    p = ctx.params
    return LoadParams(
        checks.number(p, "workers", 1, 1, 8),
        checks.number(p, "queue_capacity", 2048, 1, 1_000_000),
        checks.number(p, "warmup_s", 0.5, 0, 10, float),
        checks.number(p, "duration_s", 3.0, 0.2, 60, float),
        checks.number(p, "drain_s", 5.0, 0.1, 60, float),
        checks.number(p, "seed", 0, 0, 2**31),
    )


def _design_note(lp: LoadParams) -> str:
    return (
        f"{lp.workers} ONNX Runtime worker process(es) (1 intra-op thread, the Day-3 MLP), one batch in flight each; "
        f"queue capacity {lp.capacity}; the generator shares the front-end's event loop, so 'generator-bound' means "
        "that one Python loop (generation + queueing + batching + replies) was saturated. Latency = enqueue -> answer; "
        "queue = enqueue -> batch formation began (a worker free); formation = waiting for batch-mates; "
        "service = dispatch -> answer (transport + inference). Transport per batch = service minus the worker's own "
        "busy time (pickling, socket, process wake-ups); transport share = its part of the mean latency."
    )


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


def _sweep(
    ctx: Context, lp: LoadParams, configs: list[tuple[str, BatchConfig]], qps: list[float]
) -> list[qpsload.QpsRun]:
    runs = []
    with WorkerPool(lp.workers) as pool:
        for q in qps:
            for label, cfg in configs:
                r = qpsload.load_test(pool, cfg, q, label, lp.warmup_s, lp.duration_s, lp.drain_s, lp.seed)
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


def _modes(ctx: Context, capacity: int) -> list[tuple[str, BatchConfig]]:
    raw = ctx.param("modes", [{"label": "no batching", "max_batch_size": 1}, {"label": "dynamic", "max_batch_size": 32,
                    "max_queue_delay_us": 1000, "preferred": [8, 16, 32]}])  # fmt: skip
    if not isinstance(raw, list) or not raw:
        raise ValueError(f"params.modes {raw!r}: allowed a non-empty list of batching configs")
    return [_config(m, f"modes[{i}]", capacity) for i, m in enumerate(raw)]


def request_queue(ctx: Context) -> Output:
    """d83.e1: a burst of concurrent requests into bounded queues: accepted, rejected, depth, drain, correctness."""
    lp = _load_params(ctx)
    caps = checks.numbers(ctx.params, "capacities", [64, 512, 4096], 1, 1_000_000)
    burst = checks.number(ctx.params, "burst", 2000, 1, 100_000)
    images, _ = sample_inputs(256)
    out = Output(notes=[_host_note(), _design_note(lp)])
    t = Table.of(
        "burst",
        [
            ("queue capacity", "requests"),
            ("burst", "requests"),
            ("accepted", ""),
            ("rejected", ""),
            ("peak depth", "requests"),
            ("drain time", "ms"),
            ("p50", "ms"),
            ("p99", "ms"),
            ("answers == direct inference", ""),
        ],
        caption=f"{burst} requests submitted in one event-loop turn (concurrent clients), no batching; every accepted "
        "answer compared bit for bit with a direct batch-1 ONNX Runtime run of the same digit in this process",
    )
    depth = Series("queue_depth", x=Column("time since burst", "ms"), y=Column("queue depth", "requests"))
    from workloads.models import ortbench

    sess = ortbench.session(default_model(), "all", intra_threads=1)
    direct = np.concatenate([sess.run(None, {"input": images[k][None]})[0] for k in range(len(images))])
    with WorkerPool(lp.workers) as pool:
        cal = calibrate(pool, images[:1], tasks=200)
        tr = Table.of(
            "transport",
            [("batch", ""), ("round trip", "ms"), ("compute", "ms"), ("no-op round trip", "ms"), ("transport", "%")],
            caption="One worker alone, one request in flight, means of 200: what each hop of a request costs",
        )
        cal += calibrate(pool, images[:32], tasks=200)
        for c in cal:
            tr.add(c.batch, round(c.roundtrip_s * 1e3, 4), round(c.compute_s * 1e3, 4), round(c.noop_s * 1e3, 4),
                   round(100 * c.transport_s / c.roundtrip_s, 1))  # fmt: skip
        for cap in caps:
            r = qpsload.burst(pool, BatchConfig(1, 0, (), cap), images, burst)
            same = bool(np.array_equal(r["logits"], direct[r["idx"]]))
            t.add(cap, burst, r["accepted"], r["rejected"], r["peak"], round(r["drain_ms"], 1),
                  round(r["p50"], 2), round(r["p99"], 2), same)  # fmt: skip
            for tm, d in r["depth"]:
                depth.point(f"capacity {cap}", tm, d)
    out.tables += [tr, t]
    out.series.append(depth)
    out.notes.append(
        "A full queue answers at once with QueueFull (counted as rejected) instead of buffering without limit: "
        "the caller learns immediately, and the accepted requests' wait is bounded by capacity / service rate."
    )
    return out


def dynamic_batching(ctx: Context) -> Output:
    """d83.e2: no batching vs dynamic batching configs at the same offered loads; and what a batch costs."""
    lp = _load_params(ctx)
    qps = checks.numbers(ctx.params, "qps", [500, 3000], 1, 100_000, float)
    configs = [_config(c, f"configs[{i}]", lp.capacity) for i, c in enumerate(ctx.param("configs", []))]
    if not configs:
        raise ValueError(f"params.configs {ctx.param('configs')!r}: allowed a non-empty list of batching configs")
    sizes = checks.numbers(ctx.params, "cost_batches", [1, 2, 4, 8, 16, 32], 1, 1024)
    out = Output(notes=[_host_note(), _design_note(lp)])
    cost = Table.of(
        "batch_cost",
        [("batch", ""), ("compute", "ms"), ("compute per request", "µs"), ("round trip", "ms"),
         ("round trip per request", "µs")],
        caption="One worker alone, means of 100: inference grows sublinearly with the batch, the fixed per-call and "
        "per-message costs are shared by the batch",
    )  # fmt: skip
    cs = Series("cost_per_request", x=Column("batch", ""), y=Column("per request", "µs"), log_x=True, log_y=True)
    images = sample_inputs(max(sizes))[0]
    with WorkerPool(1) as pool:
        for b in sizes:
            (c,) = calibrate(pool, images[:b], tasks=100)
            cost.add(b, round(c.compute_s * 1e3, 4), round(c.compute_s * 1e6 / b, 2), round(c.roundtrip_s * 1e3, 4),
                     round(c.roundtrip_s * 1e6 / b, 2))  # fmt: skip
            cs.point("compute", b, c.compute_s * 1e6 / b)
            cs.point("round trip", b, c.roundtrip_s * 1e6 / b)
    t = Table.of("batching", RUN_COLS, caption=_configs_caption(configs, lp))
    p99 = Series("p99_by_config", x=Column("offered", "req/s"), y=Column("p99", "ms"), log_y=True)
    thr = Series("throughput_by_config", x=Column("offered", "req/s"), y=Column("throughput", "req/s"))
    for r in _sweep(ctx, lp, configs, qps):
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


def _configs_caption(configs: list[tuple[str, BatchConfig]], lp: LoadParams) -> str:
    desc = "; ".join(
        f"{label}: max {c.max_batch_size}, delay {c.max_queue_delay_us} µs"
        + (f", preferred {list(c.preferred_sizes)}" if c.preferred_sizes else "")
        for label, c in configs
    )
    return f"{desc}. Poisson arrivals, {lp.duration_s:g} s window after {lp.warmup_s:g} s warm-up"


def qps_levels(ctx: Context) -> Output:
    """d83.e3: 1k/5k/10k QPS offered, no batching vs dynamic batching: achieved, served, latency, rejections."""
    lp = _load_params(ctx)
    qps = checks.numbers(ctx.params, "qps", [1000, 5000, 10000], 1, 100_000, float)
    modes = _modes(ctx, lp.capacity)
    out = Output(notes=[_host_note(), _design_note(lp)])
    t = Table.of("qps_levels", RUN_COLS, caption=_configs_caption(modes, lp))
    s = Series("throughput_vs_offered", x=Column("offered", "req/s"), y=Column("throughput", "req/s"))
    lat = Series("p99_vs_offered", x=Column("offered", "req/s"), y=Column("p99", "ms"), log_y=True)
    runs = _sweep(ctx, lp, modes, qps)
    for r in runs:
        _row(t, r)
        s.point(r.label, r.run.target_qps, r.run.throughput_rps)
        lat.point(r.label, r.run.target_qps, r.run.latency_ms["p99"])
    out.tables.append(t)
    out.series += [s, lat]
    out.notes += _stall_notes(runs, lp.capacity)
    return out


def latency_curves(ctx: Context) -> Output:
    """d83.e4: latency distribution (percentile curve and CDF) for each mode and offered load."""
    lp = _load_params(ctx)
    qps = checks.numbers(ctx.params, "qps", [1000, 5000, 10000], 1, 100_000, float)
    modes = _modes(ctx, lp.capacity)
    out = Output(notes=[_host_note(), _design_note(lp)])
    cols = [("mode", ""), ("target", "req/s"), ("answered", "")] + [(f"p{p:g}", "ms") for p in PERCENTILE_POINTS]
    t = Table.of("percentiles", [*cols, ("max", "ms"), ("rejected", "")])
    t.caption = _configs_caption(modes, lp) + "; exact nearest-rank percentiles over every answered request"
    pc = Series("percentile_curve", x=Column("percentile", ""), y=Column("latency", "ms"), log_y=True)
    cdf = Series("latency_cdf", x=Column("latency", "ms"), y=Column("fraction of requests", ""), log_x=True)
    runs = _sweep(ctx, lp, modes, qps)
    out.notes += _stall_notes(runs, lp.capacity)
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
