"""Day 83 load test: Poisson single-image requests at a target QPS into the batching front-end; one measured window.

Every request arriving in the window counts: rejected (queue full), answered, or unfinished when the drain ends.
Percentiles are exact over all answered requests of the window (loadgen's nearest rank). Throughput counts answers
delivered inside the window. The verdict is loadgen's: generator-bound when the loop could not even emit the
target (here the generator shares the front-end's event loop, so this means "the one Python loop is saturated").
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from workloads.sched import openloop
from workloads.sched.batching import BatchConfig, Frontend, QueueFull, Request
from workloads.sched.pool import WorkerPool


@dataclass
class QpsRun:
    label: str
    cfg: BatchConfig
    run: openloop.Run
    rejected: int = 0
    queue_ms: dict[str, float] = field(default_factory=dict)  # enqueue -> batch formation began
    form_ms: dict[str, float] = field(default_factory=dict)  # formation -> dispatch (waiting for batch-mates)
    service_ms: dict[str, float] = field(default_factory=dict)  # dispatch -> answer
    transport_ms: float = 0.0  # mean per batch: service minus the worker's busy time (pipes, pickling, wake-ups)
    transport_req_ms: float = 0.0  # mean over requests of their batch's transport time (its share of latency)
    compute_ms: float = 0.0  # mean per batch: session.run in the worker
    worker_busy: float = 0.0  # mean share of the window the workers spent in inference, 0..1
    avg_batch: float = 0.0  # requests per batch, over the window's batches
    batches: int = 0
    peak_depth: int = 0
    samples_ms: list[float] = field(default_factory=list)  # every answered latency of the window (not stored)
    depth: list[tuple[float, int]] = field(default_factory=list)  # (s since window start, depth) at dispatches


def _mean(v: list[float]) -> float:
    return float(np.mean(v)) if v else 0.0


async def _run(
    pool: WorkerPool, cfg: BatchConfig, label: str, qps: float, warmup_s: float, duration_s: float, drain_s: float,
    seed: int,
) -> QpsRun:  # fmt: skip
    from workloads.models.data import sample_inputs

    images = sample_inputs(256)[0]
    fe = Frontend(pool, cfg)
    server = asyncio.create_task(fe.serve())
    t0 = time.perf_counter()
    win = openloop.Window(t0 + warmup_s, t0 + warmup_s + duration_s)
    counted: list[Request] = []
    rejected = 0

    def emit(now: float) -> None:
        nonlocal rejected
        k = len(counted) + rejected
        try:
            r = fe.submit(images[k % len(images)][None], counted=win.holds(now), want_result=False)
        except QueueFull:
            if win.holds(now):
                rejected += 1
            return
        if r.counted:
            counted.append(r)

    offered = await openloop.offer(qps, win, emit, seed, pool.cpu_s)
    lags, ticks, cpu = offered.lags_ms, offered.ticks_ms, offered.cpu
    deadline = time.perf_counter() + drain_s
    while any(r.t_done == 0.0 for r in counted[-1:]) and time.perf_counter() < deadline:
        await asyncio.sleep(0.005)  # FIFO: the last counted request is answered last
    offered.ticker.cancel()
    t_cut = time.perf_counter()
    fe.queue.items.clear()  # abandon what the drain did not reach; batches in flight finish in close()
    await fe.close(server)

    done = [r for r in counted if r.t_done]
    run = openloop.Run(qps, win.seconds, sent=len(counted) + rejected, ok=len(done), cpu=cpu)
    if rejected:
        run.errors["rejected"] = rejected
    if len(done) < len(counted):
        run.errors["unfinished"] = len(counted) - len(done)
    lat = [(r.t_done - r.t_enq) * 1e3 for r in done]
    # Unfinished requests enter the percentiles at their age when the drain ended: a lower bound, never dropped.
    run.latency_ms = openloop.summarize(lat + [(t_cut - r.t_enq) * 1e3 for r in counted if not r.t_done])
    run.completed_in_window = sum(len(b.requests) for b in fe.batches if win.holds(b.t_done))
    run.send_lag_ms = openloop.lag_summary(lags)
    run.loop_lag_ms = openloop.lag_summary(ticks)
    mine = [b for b in fe.batches if any(r.counted for r in b.requests)]
    busy = sum(win.overlap(b.reply.t_start, b.reply.t_end) for b in fe.batches if b.reply)
    held = sum(win.overlap(b.t_dispatch, b.t_done) for b in fe.batches)
    # "server busy" for the verdict: the pipes are part of the server here, so slot occupancy (busy + transport)
    run.busy = held / win.seconds / pool.n
    queue = [(r.t_form - r.t_enq) * 1e3 for r in done]
    run.queue_ms = _mean(queue)
    run.judge()
    out = QpsRun(label, cfg, run, rejected=rejected, samples_ms=lat, peak_depth=fe.queue.peak)
    out.queue_ms = openloop.summarize(queue)
    out.form_ms = openloop.summarize([(r.t_dispatch - r.t_form) * 1e3 for r in done])
    out.service_ms = openloop.summarize([(r.t_done - r.t_dispatch) * 1e3 for r in done])
    out.transport_ms = _mean([((b.t_done - b.t_dispatch) - b.reply.busy_s) * 1e3 for b in mine if b.reply])
    out.transport_req_ms = _mean(
        [((b.t_done - b.t_dispatch) - b.reply.busy_s) * 1e3 for b in mine if b.reply for r in b.requests if r.counted]
    )
    out.worker_busy = busy / win.seconds / pool.n
    out.compute_ms = _mean([b.reply.compute_s * 1e3 for b in mine if b.reply])
    out.avg_batch = _mean([float(len(b.requests)) for b in mine])
    out.batches = len(mine)
    out.depth = [(t - win.start, d) for t, d in fe.depth if win.holds(t)]
    return out


def load_test(
    pool: WorkerPool,
    cfg: BatchConfig,
    qps: float,
    label: str = "",
    warmup_s: float = 0.5,
    duration_s: float = 3.0,
    drain_s: float = 5.0,
    seed: int = 0,
) -> QpsRun:
    """Offer Poisson single-image requests at `qps` to a fresh Frontend(pool, cfg); measure one window."""
    return asyncio.run(_run(pool, cfg, label, qps, warmup_s, duration_s, drain_s, seed))


async def _burst(pool: WorkerPool, cfg: BatchConfig, images: np.ndarray, n: int) -> dict[str, Any]:
    fe = Frontend(pool, cfg)
    server = asyncio.create_task(fe.serve())
    t0 = time.perf_counter()
    futs, idx, rejected = [], [], 0
    for k in range(n):
        try:
            r = fe.submit(images[k % len(images)][None])
        except QueueFull:
            rejected += 1
            continue
        futs.append(r)
        idx.append(k % len(images))
    logits = np.concatenate(await asyncio.gather(*[r.future for r in futs])) if futs else np.empty((0, 10))
    drain = time.perf_counter() - t0
    await fe.close(server)
    lat = openloop.summarize([(r.t_done - r.t_enq) * 1e3 for r in futs])
    step = max(1, len(fe.depth) // 200)
    return {
        "accepted": len(futs), "rejected": rejected, "peak": fe.queue.peak, "drain_ms": drain * 1e3,
        "p50": lat["p50"], "p99": lat["p99"], "logits": logits, "idx": idx,
        "depth": [((tm - t0) * 1e3, d) for tm, d in fe.depth[::step]],
    }  # fmt: skip


def burst(pool: WorkerPool, cfg: BatchConfig, images: np.ndarray, n: int) -> dict[str, Any]:
    """n requests submitted in one loop turn (concurrent clients): accepted, rejected, peak depth, drain, latency."""
    return asyncio.run(_burst(pool, cfg, images, n))
