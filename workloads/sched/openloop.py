"""Open-loop Poisson arrivals on an asyncio loop, and what the scheduling days measure around them.

The generator runs in the same event loop as the dispatcher/front-end it drives (an embedded client): the
transport the days measure is front-end <-> worker processes, not client <-> front-end. Arrivals are scheduled at
exponential gaps; when the loop wakes late (epoll timers have 1 ms resolution, and a busy loop wakes later still)
the overdue arrivals are emitted back to back, and the lateness is kept as send lag. Percentiles and the verdict
(who limited the run) come from workloads.serving.loadgen, so these days read the same way as the serving days.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import psutil

from workloads.serving import loadgen

percentile = loadgen.percentile
summarize = loadgen.summarize


@dataclass
class Window:
    """The measured window [start, end) on time.perf_counter(); arrivals in it are the ones that count."""

    start: float
    end: float

    @property
    def seconds(self) -> float:
        return self.end - self.start

    def holds(self, t: float) -> bool:
        return self.start <= t < self.end

    def overlap(self, t0: float, t1: float) -> float:
        """Seconds of [t0, t1] inside the window."""
        return max(0.0, min(t1, self.end) - max(t0, self.start))


async def poisson(rate: float, win: Window, emit: Callable[[float], None], seed: int, lags_ms: list[float]) -> int:
    """Call emit(now) at Poisson arrivals of `rate`/s from now until win.end; returns how many were emitted."""
    rng = np.random.default_rng(seed)
    nxt = time.perf_counter()
    n = 0
    while True:
        nxt += rng.exponential(1.0 / rate)
        if nxt >= win.end:
            return n
        delay = nxt - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        now = time.perf_counter()
        if now >= win.start:
            lags_ms.append((now - nxt) * 1e3)
        emit(now)
        n += 1


async def ticker(win: Window, out_ms: list[float], period_s: float = 0.005) -> None:
    """How late the loop wakes from a `period_s` sleep during the window (every response waits that long too)."""
    while True:
        t = time.perf_counter()
        await asyncio.sleep(period_s)
        if win.holds(t):
            out_ms.append((time.perf_counter() - t - period_s) * 1e3)


@dataclass
class CpuMeter:
    """CPU used during the window: this process (generator + front-end), the workers, the whole host."""

    worker_cpu: Callable[[], float]
    _t0: float = 0.0
    _proc0: float = 0.0
    _work0: float = 0.0
    _host0: tuple[float, float] = (0.0, 0.0)
    front_cores: float = 0.0
    worker_cores: float = 0.0
    host_busy: float = 0.0  # fraction of all cores busy, 0..1

    @staticmethod
    def _host() -> tuple[float, float]:
        t = psutil.cpu_times()
        return t.idle + getattr(t, "iowait", 0.0), sum(t)

    def start(self) -> None:
        p = psutil.Process().cpu_times()
        self._t0, self._proc0, self._work0 = time.perf_counter(), p.user + p.system, self.worker_cpu()
        self._host0 = self._host()

    def stop(self) -> None:
        dt = max(time.perf_counter() - self._t0, 1e-9)
        p = psutil.Process().cpu_times()
        self.front_cores = (p.user + p.system - self._proc0) / dt
        self.worker_cores = (self.worker_cpu() - self._work0) / dt
        idle1, total1 = self._host()
        total = total1 - self._host0[1]
        self.host_busy = 1.0 - (idle1 - self._host0[0]) / total if total > 0 else 0.0


@dataclass
class Offered:
    """What `offer` leaves running and measured: send lags, loop-lag ticks, the window's CPU, the ticker task."""

    lags_ms: list[float]
    ticks_ms: list[float]
    cpu: CpuMeter
    ticker: asyncio.Task


async def offer(rate: float, win: Window, emit: Callable[[float], None], seed: int, worker_cpu) -> Offered:
    """Poisson arrivals at `rate` over the window, with the loop-lag ticker running and the CPU meter covering
    exactly the window; returns when the window has ended. The ticker keeps sampling through the caller's drain:
    cancel `ticker` after it."""
    lags: list[float] = []
    ticks: list[float] = []
    tick = asyncio.create_task(ticker(win, ticks))
    cpu = CpuMeter(worker_cpu)
    starter = asyncio.get_running_loop().call_later(max(0.0, win.start - time.perf_counter()), cpu.start)
    await poisson(rate, win, emit, seed, lags)
    await asyncio.sleep(max(0.0, win.end - time.perf_counter()))
    cpu.stop()
    starter.cancel()
    return Offered(lags, ticks, cpu, tick)


@dataclass
class Run:
    """One open-loop run, summarised the way loadgen summarises one (so its verdict applies unchanged)."""

    target_qps: float
    window_s: float
    sent: int  # arrivals in the window (accepted or not)
    ok: int  # of those, answered
    errors: dict[str, int] = field(default_factory=dict)  # kind -> count (rejected, unfinished)
    completed_in_window: int = 0  # answers (of any request) that arrived inside the window
    latency_ms: dict[str, float] = field(default_factory=dict)
    send_lag_ms: dict[str, float] = field(default_factory=dict)
    loop_lag_ms: dict[str, float] = field(default_factory=dict)
    busy: float = 0.0  # mean worker utilisation in the window, 0..1
    queue_ms: float = 0.0  # mean wait before a worker took the request, ms
    cpu: CpuMeter | None = None
    verdict: str = ""

    @property
    def achieved_qps(self) -> float:
        return self.sent / self.window_s

    @property
    def throughput_rps(self) -> float:
        """Answers delivered inside the window per second: what the system served, not what it was offered."""
        return self.completed_in_window / self.window_s

    def judge(self) -> str:
        """loadgen's verdict on this run: generator-bound, server-bound, errors, or target met."""
        res = loadgen.LoadResult(spec={}, window_s=self.window_s, sent=self.sent, ok=self.ok, errors=dict(self.errors))
        res.target_qps = self.target_qps
        res.achieved_qps = self.achieved_qps
        res.throughput_rps = self.throughput_rps
        res.send_lag_ms = self.send_lag_ms
        res.host_cpu_busy = self.cpu.host_busy if self.cpu else 0.0
        res.server = {"busy": self.busy, "queue_us": self.queue_ms * 1e3}
        self.verdict = loadgen.verdict(res)
        return self.verdict


def lag_summary(lags_ms: list[float]) -> dict[str, float]:
    if not lags_ms:
        return {}
    a = np.sort(np.asarray(lags_ms))
    return {"p50": percentile(a, 50), "p99": percentile(a, 99), "max": float(a[-1])}


def percentile_curve(lat_ms: list[float], points: tuple[float, ...]) -> list[list[float]]:
    """[[p, latency at p], ...] by nearest rank over all samples (exact)."""
    a = np.sort(np.asarray(lat_ms, dtype=np.float64))
    return [[p, percentile(a, p)] for p in points if len(a)]


def cdf(lat_ms: list[float], n_points: int = 200) -> list[list[float]]:
    """[[latency, fraction of requests at or below it], ...], thinned to ~n_points evenly spaced in rank."""
    a = np.sort(np.asarray(lat_ms, dtype=np.float64))
    if not len(a):
        return []
    idx = sorted({min(len(a) - 1, math.ceil(k * len(a) / n_points)) for k in range(n_points + 1)})
    return [[float(a[i]), (i + 1) / len(a)] for i in idx]
