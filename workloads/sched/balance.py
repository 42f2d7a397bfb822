"""Day 72 load test: Poisson tasks through a Dispatcher; latency, throughput and how evenly the workers were used.

Latency is task arrival -> answer received, split into dispatcher queue (arrival -> sent to the worker's pipe) and
service (sent -> answer: transport + the worker's busy time). Balance is per worker: tasks assigned, their
coefficient of variation (population std / mean; 0 = equal counts), and busy time inside the window (utilisation).
Equal counts are not the goal with unequal workers: equal utilisation is.
"""

from __future__ import annotations

import asyncio
import itertools
import time
from dataclasses import dataclass, field

import numpy as np

from workloads.sched import dispatch, openloop
from workloads.sched.pool import WorkerPool


@dataclass
class WorkerStats:
    worker: int
    slowdown: float
    tasks: int = 0  # counted tasks assigned to this worker
    busy_s: float = 0.0  # worker busy inside the window, s
    utilisation: float = 0.0  # busy_s / window, 0..1
    occupancy: float = 0.0  # share of the window with a task in flight on its pipe (busy + transport), 0..1
    service_ms: float = 0.0  # mean sent -> answer of its counted tasks, ms


@dataclass
class BalanceRun:
    scheduler: str
    run: openloop.Run
    workers: list[WorkerStats] = field(default_factory=list)
    queue_ms: dict[str, float] = field(default_factory=dict)  # dispatcher queue wait percentiles
    service_ms: dict[str, float] = field(default_factory=dict)
    transport_ms: float = 0.0  # mean (service - worker busy) per task: pipes, pickling, wake-ups
    picks: list[int] = field(default_factory=list)  # the run's first scheduler decisions (warm-up included)
    window_picks: list[tuple[list[int], int]] = field(default_factory=list)  # first in the window: (outstanding, pick)

    @property
    def count_cv(self) -> float:
        c = np.asarray([w.tasks for w in self.workers], dtype=np.float64)
        return float(c.std() / c.mean()) if c.mean() > 0 else 0.0

    @property
    def util_spread(self) -> float:
        u = [w.utilisation for w in self.workers]
        return max(u) - min(u)


async def _run(
    pool: WorkerPool, name: str, x: np.ndarray, rate: float, warmup_s: float, duration_s: float, drain_s: float,
    seed: int,
) -> BalanceRun:  # fmt: skip
    sched = dispatch.make(name, pool.n, seed=seed)
    d = dispatch.Dispatcher(pool, sched)
    t0 = time.perf_counter()
    win = openloop.Window(t0 + warmup_s, t0 + warmup_s + duration_s)
    counted: list[dispatch.Task] = []
    picks: list[int] = []
    window_picks: list[tuple[list[int], int]] = []
    futs: list[asyncio.Future[dispatch.Task]] = []
    ids = itertools.count()

    def emit(now: float) -> None:
        t = dispatch.Task(next(ids), x, now, counted=win.holds(now))
        before = list(sched.outstanding) if t.counted and len(window_picks) < 16 else None
        fut = d.submit(t)
        if len(picks) < 24:
            picks.append(t.worker)
        if before is not None:
            window_picks.append((before, t.worker))
        if t.counted:
            counted.append(t)
            futs.append(fut)

    offered = await openloop.offer(rate, win, emit, seed, pool.cpu_s)
    lags, ticks, cpu = offered.lags_ms, offered.ticks_ms, offered.cpu
    if futs:
        await asyncio.wait(futs, timeout=drain_s)
    offered.ticker.cancel()
    t_cut = time.perf_counter()
    await d.quiesce()
    d.close()

    finished = [t for t in counted if t.reply is not None]
    run = openloop.Run(target_qps=rate, window_s=win.seconds, sent=len(counted), ok=len(finished), cpu=cpu)
    unfinished = len(counted) - len(finished)
    if unfinished:
        run.errors["unfinished"] = unfinished
    # Unfinished tasks enter the percentiles at their age when the drain ended: a lower bound, never dropped.
    lat = [(t.t_done - t.t_arrive) * 1e3 for t in finished] + [
        (t_cut - t.t_arrive) * 1e3 for t in counted if t.reply is None
    ]
    run.latency_ms = openloop.summarize(lat)
    run.completed_in_window = sum(1 for t in d.done if win.holds(t.t_done))
    run.send_lag_ms = openloop.lag_summary(lags)
    run.loop_lag_ms = openloop.lag_summary(ticks)
    out = BalanceRun(name, run, picks=picks, window_picks=window_picks)
    for i in range(pool.n):
        mine = [t for t in counted if t.worker == i]
        busy = sum(win.overlap(t.reply.t_start, t.reply.t_end) for t in d.done if t.worker == i and t.reply)
        held = sum(win.overlap(t.t_sent, t.t_done) for t in d.done if t.worker == i)
        svc = [(t.t_done - t.t_sent) * 1e3 for t in mine if t.reply]
        mean_svc = float(np.mean(svc)) if svc else 0.0
        out.workers.append(
            WorkerStats(i, pool.slowdown[i], len(mine), busy, busy / win.seconds, held / win.seconds, mean_svc)
        )
    queue = [(t.t_sent - t.t_arrive) * 1e3 for t in finished]
    out.queue_ms = openloop.summarize(queue)
    out.service_ms = openloop.summarize([(t.t_done - t.t_sent) * 1e3 for t in finished])
    transport = [(t.t_done - t.t_sent) - t.reply.busy_s for t in finished if t.reply]
    out.transport_ms = float(np.mean(transport)) * 1e3 if transport else 0.0
    # "server busy" for the verdict: the workers' pipes are part of the server here, so occupancy, not compute
    run.busy = float(np.mean([w.occupancy for w in out.workers]))
    run.queue_ms = float(np.mean(queue)) if queue else 0.0
    run.judge()
    return out


async def _saturate(pool: WorkerPool, x: np.ndarray, seconds: float, backlog: int = 3) -> list[float]:
    d = dispatch.Dispatcher(pool, dispatch.make("round_robin", pool.n))
    ids = itertools.count()
    t0 = time.perf_counter()
    win = openloop.Window(t0, t0 + seconds)

    def top_up(i: int) -> None:
        if time.perf_counter() < win.end:
            fut = d.submit(dispatch.Task(next(ids), x, time.perf_counter()), worker=i)
            fut.add_done_callback(lambda _f: top_up(i))

    for i in range(pool.n):
        for _ in range(backlog):  # a backlog per worker: the next task is sent the moment an answer arrives
            top_up(i)
    await asyncio.sleep(seconds)
    await d.quiesce()
    d.close()
    return [sum(1 for t in d.done if t.worker == i and win.holds(t.t_done)) / seconds for i in range(pool.n)]


def saturate(pool: WorkerPool, x: np.ndarray, seconds: float = 1.0) -> list[float]:
    """Tasks/s each worker completes with a backlog on every worker at once (the pool's capacity), per worker."""
    return asyncio.run(_saturate(pool, x, seconds))


def load_test(
    pool: WorkerPool,
    scheduler: str,
    x: np.ndarray,
    rate: float,
    warmup_s: float = 0.5,
    duration_s: float = 3.0,
    drain_s: float = 5.0,
    seed: int = 0,
) -> BalanceRun:
    """Offer Poisson tasks (each the batch x) at `rate`/s to the pool under `scheduler`; measure one window."""
    return asyncio.run(_run(pool, scheduler, x, rate, warmup_s, duration_s, drain_s, seed))


def split_run(
    pool: WorkerPool, x: np.ndarray, slices: list[slice], workers: list[int]
) -> tuple[np.ndarray, float, float, list[int]]:
    """Send sub-tasks (slice k to workers[k]), merge in order; (merged, latency s, straggler gap s, arrival order)."""

    async def go() -> tuple[np.ndarray, float, float, list[int]]:
        d = dispatch.Dispatcher(pool, dispatch.make("round_robin", pool.n))
        ids = itertools.count()
        t0 = time.perf_counter()
        futs = [d.submit(dispatch.Task(next(ids), x[s], t0), worker=w) for s, w in zip(slices, workers, strict=True)]
        arrived: list[int] = []
        parts: dict[int, np.ndarray] = {}
        for k, fut in enumerate(futs):
            fut.add_done_callback(lambda _f, k=k: arrived.append(k))
        done = await asyncio.gather(*futs)
        for k, task in enumerate(done):
            assert task.reply is not None and task.reply.logits is not None
            parts[k] = task.reply.logits
        merged = dispatch.merge(parts, len(slices))
        t1 = time.perf_counter()
        ends = sorted(t.t_done for t in done)
        d.close()
        return merged, t1 - t0, ends[-1] - ends[0], arrived

    return asyncio.run(go())
