"""Latency timing shared by the engine experiments: per-call wall time with the device synchronised.

On CUDA each call is bracketed by events on the current stream (device time of that call, launch included);
on CPU by perf_counter. Percentiles are nearest-rank over all timed calls.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np


@dataclass(frozen=True)
class Latency:
    p50_ms: float
    p95_ms: float
    p99_ms: float
    mean_ms: float
    n: int

    def throughput(self, items_per_call: int) -> float:
        """items per second at the mean latency."""
        return items_per_call / (self.mean_ms / 1e3)


def summarize(ms: list[float] | np.ndarray) -> Latency:
    a = np.asarray(ms, dtype=np.float64)
    if a.size == 0:
        raise ValueError("no timings to summarize")
    p50, p95, p99 = np.percentile(a, [50, 95, 99], method="inverted_cdf")
    return Latency(float(p50), float(p95), float(p99), float(a.mean()), int(a.size))


def time_calls(fn: Callable[[], Any], device: str, warmup: int = 5, iters: int = 50) -> Latency:
    """Latency of `fn()` over `iters` calls after `warmup` untimed ones."""
    if iters < 1:
        raise ValueError(f"field iters = {iters}: must be >= 1")
    if device == "cuda":
        import torch

        for _ in range(warmup):
            fn()
        torch.cuda.synchronize()
        starts = [torch.cuda.Event(enable_timing=True) for _ in range(iters)]
        ends = [torch.cuda.Event(enable_timing=True) for _ in range(iters)]
        for s, e in zip(starts, ends, strict=True):
            s.record()
            fn()
            e.record()
        torch.cuda.synchronize()
        return summarize([s.elapsed_time(e) for s, e in zip(starts, ends, strict=True)])
    for _ in range(warmup):
        fn()
    ms = []
    for _ in range(iters):
        t0 = time.perf_counter()
        fn()
        ms.append((time.perf_counter() - t0) * 1e3)
    return summarize(ms)


def wall_once(fn: Callable[[], Any], device: str) -> tuple[Any, float]:
    """(result, seconds) of one call, synchronised: for compile, load and first-call times."""
    if device == "cuda":
        import torch

        torch.cuda.synchronize()
    t0 = time.perf_counter()
    out = fn()
    if device == "cuda":
        import torch

        torch.cuda.synchronize()
    return out, time.perf_counter() - t0
