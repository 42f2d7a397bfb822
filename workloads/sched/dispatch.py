"""Day 72: schedulers that pick a worker for each inference task, split/merge of large tasks, an open-loop dispatcher.

Schedulers see only what a real front-end sees: which worker got what and when each answer came back.
- round_robin: worker 0, 1, ..., n-1, 0, ... regardless of load.
- least_load: the fewest outstanding tasks (queued at the dispatcher for that worker + in flight), i.e.
  join-the-shortest-queue; ties go to the first tied worker at or after the round-robin cursor, so an idle pool is
  still shared instead of always starting at worker 0.
- least_time: the smallest expected completion, (outstanding + 1) x EWMA of that worker's observed service time
  (answer received - task sent); knows speed, not only queue length.
- p2c: power of two choices: two distinct random workers, the one with fewer outstanding tasks.
The dispatcher keeps one FIFO per worker and at most one task in flight on each pipe (the next is sent when the
answer arrives), so a worker's backlog is visible to the scheduler and never hidden in a pipe buffer.
"""

from __future__ import annotations

import asyncio
import itertools
import time
from abc import ABC, abstractmethod
from collections import deque
from dataclasses import dataclass, field

import numpy as np

from workloads.sched.pool import Reply, WorkerPool

SCHEDULERS = ("round_robin", "least_load", "least_time", "p2c")


class Scheduler(ABC):
    """Tracks outstanding tasks per worker; subclasses choose the worker in `pick`."""

    name = "base"

    def __init__(self, n: int) -> None:
        if n < 1:
            raise ValueError(f"workers {n}: allowed integer >= 1")
        self.n = n
        self.outstanding = [0] * n
        self.cursor = 0  # next worker in round-robin order

    @abstractmethod
    def pick(self) -> int:
        """The worker index for the next task."""

    def dispatched(self, i: int) -> None:
        self.outstanding[i] += 1

    def completed(self, i: int, service_s: float) -> None:
        self.outstanding[i] -= 1

    def _first_min(self, key: list[float]) -> int:
        """The worker with the smallest key; ties to the first at or after the cursor, which then moves past it."""
        order = [(self.cursor + k) % self.n for k in range(self.n)]
        best = min(order, key=lambda i: key[i])  # min keeps the first of equal keys in `order`
        self.cursor = (best + 1) % self.n
        return best


class RoundRobin(Scheduler):
    name = "round_robin"

    def pick(self) -> int:
        i = self.cursor
        self.cursor = (i + 1) % self.n
        return i


class LeastLoad(Scheduler):
    name = "least_load"

    def pick(self) -> int:
        return self._first_min([float(o) for o in self.outstanding])


class LeastTime(Scheduler):
    name = "least_time"

    def __init__(self, n: int, alpha: float = 0.2, prior_s: float = 0.0) -> None:
        super().__init__(n)
        self.alpha = alpha  # weight of the newest observation in the EWMA
        self.ewma = [prior_s] * n  # 0 until observed: each worker gets tried before speeds are known

    def completed(self, i: int, service_s: float) -> None:
        super().completed(i, service_s)
        e = self.ewma[i]
        self.ewma[i] = service_s if e == 0.0 else (1 - self.alpha) * e + self.alpha * service_s

    def pick(self) -> int:
        return self._first_min([(o + 1) * e for o, e in zip(self.outstanding, self.ewma, strict=True)])


class PowerOfTwo(Scheduler):
    name = "p2c"

    def __init__(self, n: int, seed: int = 0) -> None:
        super().__init__(n)
        self.rng = np.random.default_rng(seed)

    def pick(self) -> int:
        if self.n == 1:
            return 0
        a, b = (int(v) for v in self.rng.choice(self.n, size=2, replace=False))
        return b if self.outstanding[b] < self.outstanding[a] else a


def make(name: str, n: int, seed: int = 0) -> Scheduler:
    """A scheduler by name; ValueError naming the allowed names otherwise."""
    table = {"round_robin": RoundRobin, "least_load": LeastLoad, "least_time": LeastTime}
    if name == "p2c":
        return PowerOfTwo(n, seed)
    if name not in table:
        raise ValueError(f"scheduler {name!r}: allowed {', '.join(SCHEDULERS)}")
    return table[name](n)


def split(rows: int, parts: int, weights: list[float] | None = None) -> list[slice]:
    """Contiguous, in-order slices covering range(rows): equal sizes (differing by at most one) or ∝ weights."""
    if parts < 1 or parts > rows:
        raise ValueError(f"parts {parts}: allowed integer 1..{rows} (the rows to split)")
    w = np.ones(parts) if weights is None else np.asarray(weights, dtype=np.float64)
    if len(w) != parts or (w <= 0).any():
        raise ValueError(f"weights {weights}: allowed {parts} positive numbers")
    # largest-remainder rounding of rows x w/sum(w), with at least one row per part
    ideal = rows * w / w.sum()
    sizes = np.maximum(np.floor(ideal).astype(int), 1)
    while sizes.sum() < rows:
        sizes[int(np.argmax(ideal - sizes))] += 1
    while sizes.sum() > rows:
        sizes[int(np.argmax(np.where(sizes > 1, sizes - ideal, -np.inf)))] -= 1
    bounds = np.concatenate([[0], np.cumsum(sizes)])
    return [slice(int(a), int(b)) for a, b in itertools.pairwise(bounds)]


def merge(parts: dict[int, np.ndarray], expected: int) -> np.ndarray:
    """Concatenate sub-results in sub-task order 0..expected-1, whatever order they arrived in."""
    missing = sorted(set(range(expected)) - set(parts))
    if missing:
        raise ValueError(f"sub-tasks {missing} have no result: cannot merge {expected} parts")
    return np.concatenate([parts[k] for k in range(expected)])


@dataclass
class Task:
    id: int
    x: np.ndarray
    t_arrive: float
    worker: int = -1
    t_sent: float = 0.0  # handed to the worker's pipe
    t_done: float = 0.0  # answer received
    reply: Reply | None = None
    counted: bool = False


@dataclass
class Dispatcher:
    """Per-worker FIFOs in front of a WorkerPool, one task in flight per worker, a Scheduler choosing the FIFO."""

    pool: WorkerPool
    sched: Scheduler
    fifos: list[deque[Task]] = field(default_factory=list)
    busy: list[bool] = field(default_factory=list)
    tasks: dict[int, Task] = field(default_factory=dict)
    done: list[Task] = field(default_factory=list)
    waiters: dict[int, asyncio.Future[Task]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.fifos = [deque() for _ in range(self.pool.n)]
        self.busy = [False] * self.pool.n
        self.pool.attach(self._on_reply)

    def submit(self, task: Task, worker: int | None = None) -> asyncio.Future[Task]:
        """Queue a task on the scheduler's pick (or on `worker`); the future resolves when its answer arrives."""
        i = self.sched.pick() if worker is None else worker
        task.worker = i
        self.sched.dispatched(i)
        self.tasks[task.id] = task
        fut: asyncio.Future[Task] = asyncio.get_running_loop().create_future()
        self.waiters[task.id] = fut
        self.fifos[i].append(task)
        self._pump(i)
        return fut

    def _pump(self, i: int) -> None:
        if self.busy[i] or not self.fifos[i]:
            return
        t = self.fifos[i].popleft()
        self.busy[i] = True
        t.t_sent = time.perf_counter()
        self.pool.send(i, t.id, t.x)

    def _on_reply(self, i: int, r: Reply) -> None:
        now = time.perf_counter()
        t = self.tasks.pop(r.tag)
        t.t_done, t.reply = now, r
        self.busy[i] = False
        self.sched.completed(i, now - t.t_sent)
        self.done.append(t)
        self._pump(i)
        fut = self.waiters.pop(t.id)
        if not fut.done():
            fut.set_result(t)

    async def quiesce(self, timeout_s: float = 30.0) -> int:
        """Drop every queued task and wait for the ones in flight, so the pool can be reused; returns tasks dropped."""
        dropped = sum(len(f) for f in self.fifos)
        for f in self.fifos:
            f.clear()
        deadline = time.perf_counter() + timeout_s
        while any(self.busy) and time.perf_counter() < deadline:
            self.pool.check_alive()
            await asyncio.sleep(0.001)
        if any(self.busy):
            raise RuntimeError(f"workers {[i for i, b in enumerate(self.busy) if b]} did not answer in {timeout_s:g} s")
        return dropped

    def close(self) -> None:
        self.pool.detach()
