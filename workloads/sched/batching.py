"""Day 83: a bounded request queue and a dynamic batcher in front of the inference workers (asyncio front-end).

The batching rule is Triton's dynamic batcher, as a pure function (`decide`) so it is tested with a fake clock:
when a worker is free, dispatch max_batch_size requests if that many wait; else the largest preferred size that
can be formed; else wait for more requests until the oldest one has waited max_queue_delay_us, then send what there
is. max_batch_size 1 is "no batching". The queue is bounded: a request that finds it full is rejected at once
(QueueFull, counted) instead of waiting without limit - backpressure to the caller.
Each request's latency (enqueue -> answer) is split into queue wait (enqueue -> the batcher, holding a free worker,
began forming its batch), batch formation (-> dispatch: waiting for batch-mates) and service (-> answer: transport
+ inference in the worker).
"""

from __future__ import annotations

import asyncio
import itertools
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from workloads.sched.pool import Reply, WorkerPool


class QueueFull(Exception):  # noqa: N818 - reads as `except QueueFull`
    """The bounded request queue is full: the request is rejected, not buffered."""


@dataclass(frozen=True)
class BatchConfig:
    """Dynamic batching settings (Triton's names); validated on construction."""

    max_batch_size: int = 32  # 1 = no batching
    max_queue_delay_us: int = 1000  # longest a request waits for batch-mates once a worker is free, µs
    preferred_sizes: tuple[int, ...] = ()  # batch sizes sent as soon as they can be formed
    queue_capacity: int = 2048  # requests the queue holds before rejecting

    def __post_init__(self) -> None:
        if isinstance(self.max_batch_size, bool) or not isinstance(self.max_batch_size, int) or self.max_batch_size < 1:
            raise ValueError(f"max_batch_size {self.max_batch_size!r}: allowed integer >= 1")
        if not isinstance(self.max_queue_delay_us, int) or self.max_queue_delay_us < 0:
            raise ValueError(f"max_queue_delay_us {self.max_queue_delay_us!r}: allowed integer >= 0")
        bad = [p for p in self.preferred_sizes if not isinstance(p, int) or not 1 <= p <= self.max_batch_size]
        if bad:
            raise ValueError(
                f"preferred_sizes {list(self.preferred_sizes)}: allowed integers 1..max_batch_size "
                f"({self.max_batch_size})"
            )
        if not isinstance(self.queue_capacity, int) or self.queue_capacity < 1:
            raise ValueError(f"queue_capacity {self.queue_capacity!r}: allowed integer >= 1")


def decide(cfg: BatchConfig, pending: int, oldest_enqueued: float, now: float) -> tuple[int, float | None]:
    """With a free worker: (requests to send now, None) or (0, time to look again); times in seconds."""
    if pending <= 0:
        return 0, None  # nothing to do until a request arrives
    if pending >= cfg.max_batch_size:
        return cfg.max_batch_size, None
    fits = [p for p in cfg.preferred_sizes if p <= pending]
    if fits:
        return max(fits), None
    deadline = oldest_enqueued + cfg.max_queue_delay_us * 1e-6
    if now >= deadline:
        return pending, None
    return 0, deadline


@dataclass
class Request:
    id: int
    x: np.ndarray  # one image, [1, 1, 28, 28]
    t_enq: float
    counted: bool = False
    t_form: float = 0.0  # the batcher (with a free worker) began forming this request's batch
    t_dispatch: float = 0.0
    t_done: float = 0.0
    batch: int = 0  # size of the batch it ran in
    logits: np.ndarray | None = None
    future: asyncio.Future[np.ndarray] | None = None


class RequestQueue:
    """Bounded FIFO of requests; `offer` refuses (and counts) when full; keeps the peak depth."""

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self.items: deque[Request] = deque()
        self.rejected = 0
        self.peak = 0

    def __len__(self) -> int:
        return len(self.items)

    def offer(self, r: Request) -> bool:
        if len(self.items) >= self.capacity:
            self.rejected += 1
            return False
        self.items.append(r)
        self.peak = max(self.peak, len(self.items))
        return True

    def oldest(self) -> float:
        return self.items[0].t_enq

    def take(self, n: int) -> list[Request]:
        return [self.items.popleft() for _ in range(min(n, len(self.items)))]


@dataclass
class Batch:
    id: int
    worker: int
    requests: list[Request]
    t_dispatch: float
    reply: Reply | None = None
    t_done: float = 0.0


@dataclass
class Frontend:
    """Request queue + dynamic batcher over a WorkerPool (one batch in flight per worker); `submit` never blocks."""

    pool: WorkerPool
    cfg: BatchConfig
    clock: Callable[[], float] = time.perf_counter
    queue: RequestQueue = field(init=False)
    batches: list[Batch] = field(default_factory=list)
    depth: list[tuple[float, int]] = field(default_factory=list)  # (time, queue depth) at every dispatch
    _idle: deque[int] = field(default_factory=deque)
    _inflight: dict[int, Batch] = field(default_factory=dict)
    _ids: itertools.count = field(default_factory=itertools.count)

    def __post_init__(self) -> None:
        self.queue = RequestQueue(self.cfg.queue_capacity)
        self._idle.extend(range(self.pool.n))
        self._wake = asyncio.Event()
        self._closing = False
        self.pool.attach(self._on_reply)

    def submit(self, x: np.ndarray, counted: bool = False, want_result: bool = True) -> Request:
        """Enqueue one request; raises QueueFull when the queue is at capacity. r.future yields its logits."""
        r = Request(next(self._ids), x, self.clock(), counted)
        if not self.queue.offer(r):
            raise QueueFull(f"request queue full ({self.cfg.queue_capacity} waiting): rejected")
        if want_result:
            r.future = asyncio.get_running_loop().create_future()
        self._wake.set()
        return r

    async def infer(self, x: np.ndarray) -> np.ndarray:
        """Submit one image and wait for its logits."""
        r = self.submit(x)
        assert r.future is not None
        return await r.future

    async def _wait(self, until: float | None) -> None:
        """Sleep until something is submitted/answered, or until `until` (clock time)."""
        self._wake.clear()
        timer = None
        if until is not None:
            timer = asyncio.get_running_loop().call_later(max(0.0, until - self.clock()), self._wake.set)
        await self._wake.wait()
        if timer is not None:
            timer.cancel()

    async def serve(self) -> None:
        """The batcher: for each free worker, form one batch by `decide` and send it; runs until `close`."""
        while not self._closing:
            if not self._idle or not self.queue:
                await self._wait(None)
                continue
            t_form = self.clock()
            while not self._closing:
                n, until = decide(self.cfg, len(self.queue), self.queue.oldest(), self.clock())
                if n:
                    break
                await self._wait(until)
            if self._closing:
                break
            self._dispatch(self._idle.popleft(), n, t_form)

    def _dispatch(self, worker: int, n: int, t_form: float) -> None:
        reqs = self.queue.take(n)
        now = self.clock()
        for r in reqs:
            r.t_form, r.t_dispatch, r.batch = max(r.t_enq, t_form), now, len(reqs)
        b = Batch(next(self._ids), worker, reqs, now)
        self._inflight[b.id] = b
        self.depth.append((now, len(self.queue)))
        self.pool.send(worker, b.id, np.concatenate([r.x for r in reqs]))

    def _on_reply(self, worker: int, rep: Reply) -> None:
        now = self.clock()
        b = self._inflight.pop(rep.tag)
        b.reply, b.t_done = rep, now
        self.batches.append(b)
        assert rep.logits is not None
        for k, r in enumerate(b.requests):
            r.t_done, r.logits = now, rep.logits[k : k + 1]
            if r.future is not None and not r.future.done():
                r.future.set_result(r.logits)
        self._idle.append(worker)
        self._wake.set()

    async def close(self, server: asyncio.Task[None]) -> None:
        """Stop the batcher, wait for batches in flight (the pool stays reusable), detach from the pool."""
        self._closing = True
        self._wake.set()
        await server
        while self._inflight:
            self.pool.check_alive()
            await asyncio.sleep(0.002)
        self.pool.detach()
