"""Dispatch policies over real ONNX Runtime worker processes (d72): round robin and least load under load, every
policy at several loads, and one large request split over the workers and merged in order.

The pool is deliberately unequal (`slowdown`, default [1, 1, 4]) and each task stands for more work than the tiny
MLP does (`device_ms`, default 2): a task runs the real model (c ms, ~0.1 ms for 16 digits) and then holds its
worker until slowdown x (c + device_ms) have passed, by sleeping. So the last worker is a device four times slower,
and the comparison is decided by the schedulers, not by which process the 2-core host's CPU favours. With equal
workers round robin and least load would look alike. Offered load is a fraction of the pool's capacity measured
here (every worker kept busy at once), so the runs mean the same on a faster or busier host.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Literal

import numpy as np
from pydantic import Field, model_validator

from ailab.contract import Column, Context, Output, Params, Series, Table
from workloads.models.data import sample_inputs
from workloads.sched import dispatch
from workloads.sched.pool import WorkerPool, calibrate, host_note

if TYPE_CHECKING:
    from workloads.sched import balance

# the policies of workloads/sched/dispatch.py (a test keeps the two lists equal)
SchedulerName = Literal["round_robin", "least_load", "least_time", "p2c"]
Load = Annotated[float, Field(ge=0.01, le=2.0)]


class PoolParams(Params):
    """The worker pool and the measured window, shared by every d72 runner."""

    workers: int = Field(default=3, ge=1, le=8, description="worker processes")
    slowdown: list[Annotated[float, Field(ge=1, le=20)]] = Field(
        default=[1, 1, 4], min_length=1, description="per worker: how many times slower than worker 0 (one each)"
    )
    device_ms: float = Field(
        default=2.0, ge=0, le=1000, description="emulated device time per task at slowdown 1, ms (after inference)"
    )
    task_batch: int = Field(default=16, ge=1, le=1024, description="digits per inference task")
    warmup_s: float = Field(default=0.5, ge=0, le=10)
    duration_s: float = Field(default=3.0, ge=0.2, le=60, description="measured window, s")
    drain_s: float = Field(default=3.0, ge=0.1, le=60, description="wait for queued tasks after the window, s")
    seed: int = Field(default=0, ge=0, le=2**31)

    @model_validator(mode="after")
    def _one_slowdown_per_worker(self) -> PoolParams:
        if len(self.slowdown) != self.workers:
            raise ValueError(f"slowdown {self.slowdown}: allowed one factor per worker ({self.workers} = workers)")
        return self


class RoundRobinParams(PoolParams):
    scheduler: SchedulerName = "round_robin"
    load: Load = Field(default=0.6, description="offered load, x the pool's measured capacity")


class LeastLoadParams(PoolParams):
    scheduler: SchedulerName = "least_load"
    load: Load = Field(default=0.6, description="offered load, x the pool's measured capacity")


class CompareParams(PoolParams):
    schedulers: list[SchedulerName] = Field(default=list(dispatch.SCHEDULERS), min_length=1)
    loads: list[Load] = Field(default=[0.3, 0.6, 0.85], min_length=1, description="x the pool's measured capacity")


class SplitMergeParams(PoolParams):
    rows: int = Field(default=1024, ge=2, le=8192, description="digits in the one large request")
    parts: list[Annotated[int, Field(ge=1)]] = Field(default=[1, 2, 3, 6], min_length=1, description="sub-tasks")
    strategies: list[Literal["equal", "weighted"]] = Field(default=["equal", "weighted"], min_length=1)
    repeats: int = Field(default=20, ge=1, le=1000)

    @model_validator(mode="after")
    def _parts_fit_rows(self) -> SplitMergeParams:
        if bad := [n for n in self.parts if n > self.rows]:
            raise ValueError(f"parts {bad}: allowed 1..rows ({self.rows}): a sub-task needs at least one row")
        return self


def _pool_note(p: PoolParams) -> str:
    return (
        f"{p.workers} worker processes, each one ONNX Runtime session (1 intra-op thread) of the Day-3 MLP; a task is "
        f"{p.task_batch} digits; a task holds worker i for slowdown[i] x (inference + {p.device_ms:g} ms), slowdown "
        f"{list(p.slowdown)}; the time beyond the real inference is slept (an emulated device, no host CPU). "
        "Transport: a socket pair per worker "
        "(pickled numpy), one task in flight per worker, per-worker FIFOs in the dispatcher."
    )


def _pool(p: PoolParams) -> WorkerPool:
    return WorkerPool(p.workers, list(p.slowdown), device_ms=p.device_ms)


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
    from workloads.sched import balance

    balance.saturate(pool, x, 0.3)  # warm every session and pipe first
    return balance.saturate(pool, x, 1.0)


def _one_scheduler(ctx: Context, p: RoundRobinParams | LeastLoadParams) -> Output:
    from workloads.sched import balance

    x = sample_inputs(p.task_batch)[0]
    out = Output(notes=[host_note(), _pool_note(p)])
    with _pool(p) as pool:
        caps = _capacity(pool, x)
        out.tables.append(_calibration_table(pool, x, caps))
        r = balance.load_test(pool, p.scheduler, x, p.load * sum(caps), p.warmup_s, p.duration_s, p.drain_s, p.seed)
    s = Table.of("summary", SUMMARY_COLS)
    s.caption = (
        f"Poisson arrivals, {p.duration_s:g} s window after {p.warmup_s:g} s warm-up; latency = arrival -> answer; "
        "count CV = std/mean of tasks per worker"
    )
    _summary_row(s, p.load, r)
    order = Table.of("decisions", [("task", ""), ("outstanding per worker before", "tasks"), ("picked", "worker")])
    order.caption = "The scheduler's first 16 choices inside the measured window, with what it saw."
    for k, (before, w) in enumerate(r.window_picks):
        order.add(k, " / ".join(str(o) for o in before), w)
    out.tables += [s, _worker_table("per_worker", r), order]
    ctx.log(f"{p.scheduler} at {p.load:g} x capacity: p99 {r.run.latency_ms['p99']:.1f} ms, count CV {r.count_cv:.2f}")
    return out


def round_robin(ctx: Context, p: RoundRobinParams) -> Output:
    """d72.e1: round robin over unequal workers: equal counts, unequal utilisation, the slow worker's queue."""
    return _one_scheduler(ctx, p)


def least_load(ctx: Context, p: LeastLoadParams) -> Output:
    """d72.e2: least outstanding tasks (join the shortest queue): counts follow speed, utilisation evens out."""
    return _one_scheduler(ctx, p)


def compare(ctx: Context, p: CompareParams) -> Output:
    """d72.e4: every scheduler at several loads: throughput, p50/p95/p99, count CV, utilisation per worker."""
    from workloads.sched import balance

    x = sample_inputs(p.task_batch)[0]
    out = Output(notes=[host_note(), _pool_note(p)])
    s = Table.of("comparison", SUMMARY_COLS)
    s.caption = (
        f"Poisson arrivals at load x measured capacity, {p.duration_s:g} s window after {p.warmup_s:g} s warm-up; "
        f"unfinished tasks (still queued {p.drain_s:g} s after the window) enter the percentiles at their age then "
        "(a lower bound)"
    )
    p99 = Series("p99_vs_load", x=Column("load", "x capacity"), y=Column("p99 latency", "ms"), log_y=True)
    thr = Series("throughput_vs_load", x=Column("load", "x capacity"), y=Column("throughput", "tasks/s"))
    share = Series("slow_worker_share", x=Column("load", "x capacity"), y=Column("tasks to the slowest worker", "%"))
    slowest = int(np.argmax(p.slowdown))
    last: dict[str, balance.BalanceRun] = {}
    with _pool(p) as pool:
        caps = _capacity(pool, x)
        out.tables.append(_calibration_table(pool, x, caps))
        for load in p.loads:
            for name in p.schedulers:
                r = balance.load_test(pool, name, x, load * sum(caps), p.warmup_s, p.duration_s, p.drain_s, p.seed)
                _summary_row(s, load, r)
                p99.point(name, load, r.run.latency_ms["p99"])
                thr.point(name, load, r.run.throughput_rps)
                total = sum(w.tasks for w in r.workers) or 1
                share.point(name, load, 100 * r.workers[slowest].tasks / total)
                last[name] = r
                ctx.log(f"{name} {load:g}: p99 {r.run.latency_ms['p99']:.1f} ms, {r.run.verdict}")
    out.tables.append(s)
    out.tables += [_worker_table(f"per_worker {n} at {p.loads[-1]:g}", r) for n, r in last.items()]
    out.series += [p99, thr, share]
    fair = 100 / p.workers
    cap_share = 100 * caps[slowest] / sum(caps)
    out.notes.append(
        f"The slowest worker (worker {slowest}) has {cap_share:.0f}% of the measured capacity; round robin sends it "
        f"{fair:.0f}% of the tasks whatever the load, so it saturates first and its queue sets the tail latency."
    )
    return out


def split_merge(ctx: Context, p: SplitMergeParams) -> Output:
    """d72.e3: one large request split into sub-tasks over the workers and merged in order, checked against unsplit."""
    from workloads.sched import balance

    x = sample_inputs(p.rows)[0]
    out = Output(notes=[host_note(), _pool_note(p)])
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
        caption=f"One request of {p.rows} digits; sub-task k goes to worker k mod {p.workers} (equal: equal rows; "
        "weighted: rows in proportion to each worker's measured speed); merged by sub-task index; "
        f"{p.repeats} repeats; straggler gap = last sub-result - first",
    )
    s = Series("split_latency", x=Column("parts", ""), y=Column("latency p50", "ms"))
    with _pool(p) as pool:
        ref = pool.roundtrip(0, x)[0].logits  # unsplit, on one worker
        assert ref is not None
        speed = [1.0 / c.busy_s for c in calibrate(pool, x[:64], tasks=30, warmup=5)]
        for strategy in p.strategies:
            for parts in p.parts:
                workers = [k % pool.n for k in range(parts)]
                weights = [speed[w] for w in workers] if strategy == "weighted" else None
                slices = dispatch.split(p.rows, parts, weights)
                lats, gaps, disorder, merged = [], [], 0, ref
                for _ in range(p.repeats):
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
                    round(100 * disorder / p.repeats, 1),
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
