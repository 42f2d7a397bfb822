"""Day 72 runners: round robin and least load over real ONNX Runtime worker processes, split/merge, and a load test.

The pool is deliberately unequal (param `slowdown`, default [1, 1, 4]) and each task stands for more work than
the tiny MLP does (param `device_ms`, default 2): a task runs the real model (c ms, ~0.1 ms for 16 digits) and then
holds its worker until slowdown x (c + device_ms) have passed, by sleeping. So the last worker is a device four times
slower, and the comparison is decided by the schedulers, not by which process the 2-core host's CPU favours.
With equal workers round robin and least load would look alike. Offered load is a fraction of the pool's capacity
measured here (every worker kept busy at once), so the runs mean the same on a faster or busier host.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np

from ailab.contract import Column, Context, Output, Series, Table
from workloads.models.data import sample_inputs
from workloads.sched import balance, checks, dispatch
from workloads.sched.pool import WorkerPool, calibrate


@dataclass(frozen=True)
class PoolParams:
    workers: int
    slowdown: list[float]
    device_ms: float  # emulated device time per task at slowdown 1, ms (on top of the real inference)
    task_batch: int  # images per inference task
    warmup_s: float
    duration_s: float
    drain_s: float
    seed: int


def _pool_params(ctx: Context) -> PoolParams:
    p = ctx.params
    workers = checks.number(p, "workers", 3, 1, 8)
    slowdown = checks.numbers(p, "slowdown", [1, 1, 4], 1, 20, float)
    if len(slowdown) != workers:
        raise ValueError(f"params.slowdown {slowdown}: allowed one factor per worker ({workers} = params.workers)")
    return PoolParams(
        workers,
        slowdown,
        checks.number(p, "device_ms", 2.0, 0, 1000, float),
        checks.number(p, "task_batch", 16, 1, 1024),
        checks.number(p, "warmup_s", 0.5, 0, 10, float),
        checks.number(p, "duration_s", 3.0, 0.2, 60, float),
        checks.number(p, "drain_s", 3.0, 0.1, 60, float),
        checks.number(p, "seed", 0, 0, 2**31),
    )


def _host_note() -> str:
    la = os.getloadavg()
    return f"host: {os.cpu_count()} cores, load average {la[0]:.1f}/{la[1]:.1f}/{la[2]:.1f} (1/5/15 min) at start"


def _pool_note(pp: PoolParams) -> str:
    return (
        f"{pp.workers} worker processes, each one ONNX Runtime session (1 intra-op thread) of the Day-3 MLP; a task is "
        f"{pp.task_batch} digits; a task holds worker i for slowdown[i] x (inference + {pp.device_ms:g} ms), slowdown "
        f"{pp.slowdown}; the time beyond the real inference is slept (an emulated device, no host CPU). "
        "Transport: a socket pair per worker "
        "(pickled numpy), one task in flight per worker, per-worker FIFOs in the dispatcher."
    )


def _calibration_table(pool: WorkerPool, x: np.ndarray, caps: list[float]) -> Table:
    t = Table.of(
        "workers",
        [
            ("worker", ""),
            ("slowdown", "x"),
            ("round trip alone", "ms"),
            ("compute", "ms"),
            ("busy", "ms"),
            ("no-op round trip", "ms"),
            ("transport share alone", "%"),
            ("capacity under load", "tasks/s"),
        ],
        caption="Each worker alone, one task in flight (means of 100); no-op = the same batch sent and answered "
        "without inference (pickling, pipes, wake-ups). Capacity: tasks/s with every worker kept busy at once.",
    )
    for c, cap in zip(calibrate(pool, x, tasks=100), caps, strict=True):
        t.add(
            c.worker,
            pool.slowdown[c.worker],
            round(c.roundtrip_s * 1e3, 3),
            round(c.compute_s * 1e3, 3),
            round(c.busy_s * 1e3, 3),
            round(c.noop_s * 1e3, 3),
            round(100 * c.transport_s / c.roundtrip_s, 1),
            round(cap, 1),
        )
    return t


def _summary_row(t: Table, load: float, r: balance.BalanceRun) -> None:
    run = r.run
    t.add(
        r.scheduler,
        load,
        round(run.target_qps, 1),
        round(run.achieved_qps, 1),
        round(run.throughput_rps, 1),
        round(run.latency_ms["p50"], 2),
        round(run.latency_ms["p95"], 2),
        round(run.latency_ms["p99"], 2),
        round(r.queue_ms.get("p50", float("nan")), 2),
        round(r.service_ms.get("p50", float("nan")), 2),
        round(r.transport_ms, 3),
        round(r.count_cv, 3),
        round(r.util_spread, 3),
        run.errors.get("unfinished", 0),
        run.verdict,
    )


SUMMARY_COLS: list[tuple[str, str]] = [
    ("scheduler", ""),
    ("load", "x capacity"),
    ("offered", "tasks/s"),
    ("achieved", "tasks/s"),
    ("throughput", "tasks/s"),
    ("p50", "ms"),
    ("p95", "ms"),
    ("p99", "ms"),
    ("queue p50", "ms"),
    ("service p50", "ms"),
    ("transport mean", "ms"),
    ("count CV", ""),
    ("utilisation spread", ""),
    ("unfinished", "tasks"),
    ("verdict", ""),
]


def _worker_table(name: str, r: balance.BalanceRun) -> Table:
    t = Table.of(
        name,
        [
            ("worker", ""),
            ("slowdown", "x"),
            ("tasks", ""),
            ("share", "%"),
            ("busy", "s"),
            ("utilisation", "%"),
            ("occupancy", "%"),
            ("mean service", "ms"),
        ],
        caption="Tasks that arrived in the window, by worker; busy = inference + device sleep inside the window; "
        "occupancy = a task on the worker's pipe (busy + transport).",
    )
    total = sum(w.tasks for w in r.workers) or 1
    for w in r.workers:
        t.add(
            w.worker,
            w.slowdown,
            w.tasks,
            round(100 * w.tasks / total, 1),
            round(w.busy_s, 3),
            round(100 * w.utilisation, 1),
            round(100 * w.occupancy, 1),
            round(w.service_ms, 3),
        )
    return t


def _capacity(pool: WorkerPool, x: np.ndarray) -> list[float]:
    balance.saturate(pool, x, 0.3)  # warm every session and pipe first
    return balance.saturate(pool, x, 1.0)


def _one_scheduler(ctx: Context, default: str) -> Output:
    pp = _pool_params(ctx)
    name = ctx.param("scheduler", default)
    if name not in dispatch.SCHEDULERS:
        raise ValueError(f"params.scheduler {name!r}: allowed {', '.join(dispatch.SCHEDULERS)}")
    load = checks.number(ctx.params, "load", 0.6, 0.01, 2.0, float)
    x = sample_inputs(pp.task_batch)[0]
    out = Output(notes=[_host_note(), _pool_note(pp)])
    with WorkerPool(pp.workers, pp.slowdown, device_ms=pp.device_ms) as pool:
        caps = _capacity(pool, x)
        out.tables.append(_calibration_table(pool, x, caps))
        r = balance.load_test(pool, name, x, load * sum(caps), pp.warmup_s, pp.duration_s, pp.drain_s, pp.seed)
    s = Table.of("summary", SUMMARY_COLS)
    s.caption = (
        f"Poisson arrivals, {pp.duration_s:g} s window after {pp.warmup_s:g} s warm-up; latency = arrival -> answer; "
        "count CV = std/mean of tasks per worker"
    )
    _summary_row(s, load, r)
    order = Table.of("decisions", [("task", ""), ("outstanding per worker before", "tasks"), ("picked", "worker")])
    order.caption = "The scheduler's first 16 choices inside the measured window, with what it saw."
    for k, (before, w) in enumerate(r.window_picks):
        order.add(k, " / ".join(str(o) for o in before), w)
    out.tables += [s, _worker_table("per_worker", r), order]
    ctx.log(f"{name} at {load:g} x capacity: p99 {r.run.latency_ms['p99']:.1f} ms, count CV {r.count_cv:.2f}")
    return out


def round_robin(ctx: Context) -> Output:
    """d72.e1: round robin over unequal workers: equal counts, unequal utilisation, the slow worker's queue."""
    return _one_scheduler(ctx, "round_robin")


def least_load(ctx: Context) -> Output:
    """d72.e2: least outstanding tasks (join the shortest queue): counts follow speed, utilisation evens out."""
    return _one_scheduler(ctx, "least_load")


def compare(ctx: Context) -> Output:
    """d72.e4: every scheduler at several loads: throughput, p50/p95/p99, count CV, utilisation per worker."""
    pp = _pool_params(ctx)
    names = checks.choices(ctx.params, "schedulers", list(dispatch.SCHEDULERS), dispatch.SCHEDULERS)
    loads = checks.numbers(ctx.params, "loads", [0.3, 0.6, 0.85], 0.01, 2.0, float)
    x = sample_inputs(pp.task_batch)[0]
    out = Output(notes=[_host_note(), _pool_note(pp)])
    s = Table.of("comparison", SUMMARY_COLS)
    s.caption = (
        f"Poisson arrivals at load x measured capacity, {pp.duration_s:g} s window after {pp.warmup_s:g} s warm-up; "
        f"unfinished tasks (still queued {pp.drain_s:g} s after the window) enter the percentiles at their age then "
        "(a lower bound)"
    )
    p99 = Series("p99_vs_load", x=Column("load", "x capacity"), y=Column("p99 latency", "ms"), log_y=True)
    thr = Series("throughput_vs_load", x=Column("load", "x capacity"), y=Column("throughput", "tasks/s"))
    share = Series("slow_worker_share", x=Column("load", "x capacity"), y=Column("tasks to the slowest worker", "%"))
    slowest = int(np.argmax(pp.slowdown))
    last: dict[str, balance.BalanceRun] = {}
    with WorkerPool(pp.workers, pp.slowdown, device_ms=pp.device_ms) as pool:
        caps = _capacity(pool, x)
        out.tables.append(_calibration_table(pool, x, caps))
        for load in loads:
            for name in names:
                r = balance.load_test(pool, name, x, load * sum(caps), pp.warmup_s, pp.duration_s, pp.drain_s, pp.seed)
                _summary_row(s, load, r)
                p99.point(name, load, r.run.latency_ms["p99"])
                thr.point(name, load, r.run.throughput_rps)
                total = sum(w.tasks for w in r.workers) or 1
                share.point(name, load, 100 * r.workers[slowest].tasks / total)
                last[name] = r
                ctx.log(f"{name} {load:g}: p99 {r.run.latency_ms['p99']:.1f} ms, {r.run.verdict}")
    out.tables.append(s)
    out.tables += [_worker_table(f"per_worker {n} at {loads[-1]:g}", r) for n, r in last.items()]
    out.series += [p99, thr, share]
    fair = 100 / pp.workers
    cap_share = 100 * caps[slowest] / sum(caps)
    out.notes.append(
        f"The slowest worker (worker {slowest}) has {cap_share:.0f}% of the measured capacity; round robin sends it "
        f"{fair:.0f}% of the tasks whatever the load, so it saturates first and its queue sets the tail latency."
    )
    return out


def split_merge(ctx: Context) -> Output:
    """d72.e3: one large request split into sub-tasks over the workers and merged in order, checked against unsplit."""
    pp = _pool_params(ctx)
    rows = checks.number(ctx.params, "rows", 1024, 2, 8192)
    parts_list = checks.numbers(ctx.params, "parts", [1, 2, 3, 6], 1, rows)
    strategies = checks.choices(ctx.params, "strategies", ["equal", "weighted"], ("equal", "weighted"))
    repeats = checks.number(ctx.params, "repeats", 20, 1, 1000)
    x = sample_inputs(rows)[0]
    out = Output(notes=[_host_note(), _pool_note(pp)])
    t = Table.of(
        "split_merge",
        [
            ("strategy", ""),
            ("parts", ""),
            ("rows per part", ""),
            ("latency p50", "ms"),
            ("latency min", "ms"),
            ("straggler gap p50", "ms"),
            ("arrived out of order", "%"),
            ("merged == unsplit", ""),
            ("max |diff|", ""),
            ("same argmax", ""),
        ],
        caption=f"One request of {rows} digits; sub-task k goes to worker k mod {pp.workers} (equal: equal rows; "
        "weighted: rows in proportion to each worker's measured speed); merged by sub-task index; "
        f"{repeats} repeats; straggler gap = last sub-result - first",
    )
    s = Series("split_latency", x=Column("parts", ""), y=Column("latency p50", "ms"))
    with WorkerPool(pp.workers, pp.slowdown, device_ms=pp.device_ms) as pool:
        ref = pool.roundtrip(0, x)[0].logits  # unsplit, on one worker
        assert ref is not None
        speed = [1.0 / c.busy_s for c in calibrate(pool, x[:64], tasks=30, warmup=5)]
        for strategy in strategies:
            for parts in parts_list:
                workers = [k % pool.n for k in range(parts)]
                weights = [speed[w] for w in workers] if strategy == "weighted" else None
                slices = dispatch.split(rows, parts, weights)
                lats, gaps, disorder, merged = [], [], 0, ref
                for _ in range(repeats):
                    merged, lat, gap, arrived = balance.split_run(pool, x, slices, workers)
                    lats.append(lat * 1e3)
                    gaps.append(gap * 1e3)
                    disorder += arrived != sorted(arrived)
                diff = float(np.abs(merged - ref).max())
                sizes = sorted({sl.stop - sl.start for sl in slices})
                t.add(
                    strategy,
                    parts,
                    "/".join(str(n) for n in (sizes if strategy == "equal" else [sl.stop - sl.start for sl in slices])),
                    round(float(np.median(lats)), 3),
                    round(min(lats), 3),
                    round(float(np.median(gaps)), 3),
                    round(100 * disorder / repeats, 1),
                    bool(np.array_equal(merged, ref)),
                    diff,
                    bool((merged.argmax(1) == ref.argmax(1)).all()),
                )  # fmt: skip
                s.point(strategy, parts, float(np.median(lats)))
    out.tables.append(t)
    out.series.append(s)
    out.notes.append(
        "Merging by sub-task index makes the order of arrival irrelevant; 'arrived out of order' shows how often "
        "a later slice came back first. merged == unsplit compares bit for bit with the whole request run on one "
        "worker; max |diff| and same argmax say how far apart they are when a different batch size changes the "
        "kernel's summation order."
    )
    return out
