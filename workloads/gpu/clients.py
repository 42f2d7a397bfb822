"""Run several GPU client processes at once and summarise them; sample GPU utilisation through the lab's exporter
or GPU memory and utilisation through NVML."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import threading
import time
import urllib.request
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from ailab.contract.ports import free_port


@dataclass
class ClientRun:
    clients: int
    requests: int
    requests_per_s: float
    p50_ms: float
    p99_ms: float
    per_client_req: list[int] = field(default_factory=list)
    per_client: list[dict] = field(default_factory=list)  # each worker's own output (latencies_ms, reserved_mib, ...)
    started_at: float = 0.0  # epoch s at which every client started timing


def run_clients(
    n: int,
    cfg: dict,
    env: dict[str, str] | None = None,
    affinity: list[set[int]] | None = None,
    timeout_s: float = 240,
    per_client: list[dict] | None = None,
) -> ClientRun:
    """`n` worker processes, started together (timing begins at a common instant after their warm-up); client k runs
    `cfg` updated with `per_client[k]` when given (several models side by side)."""
    if per_client is not None and len(per_client) != n:
        raise ValueError(f"per_client: {len(per_client)} configs for {n} clients")
    start_at = time.time() + 8.0  # time for every client to import torch and warm up
    procs = []
    for k in range(n):
        own = {**cfg, **(per_client[k] if per_client else {})}
        e = dict(os.environ)
        e.update(env or {})
        aff = affinity[k % len(affinity)] if affinity else None
        procs.append(
            subprocess.Popen(
                [sys.executable, "-m", "workloads.gpu.worker", json.dumps({**own, "start_at": start_at})],
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
                env=e,
                preexec_fn=(lambda a=aff: os.sched_setaffinity(0, a)) if aff else None,
            )
        )
    results = []
    for p in procs:
        so, se = p.communicate(timeout=timeout_s)
        line = [ln for ln in so.splitlines() if ln.startswith("{")]
        if p.returncode != 0 or not line:
            raise RuntimeError(f"client exited {p.returncode}: {se[-800:]}")
        results.append(json.loads(line[-1]))
    lat = np.concatenate([np.asarray(r["latencies_ms"], dtype=np.float64) for r in results])
    if not lat.size:  # a soak's workers summarise per window instead (worker.windows)
        lat = np.array([np.nan])
    total = sum(r["requests"] for r in results)
    secs = results[0]["seconds"]
    return ClientRun(
        n,
        total,
        total / secs,
        float(np.percentile(lat, 50)),
        float(np.percentile(lat, 99)),
        [r["requests"] for r in results],
        results,
        start_at,
    )


class Sampler(ABC):
    """Calls `read()` every `period_s` on a thread while entered and keeps what it returns (None is skipped)."""

    def __init__(self, period_s: float) -> None:
        self.period_s = period_s
        self.samples: list = []
        self._stop = threading.Event()
        self._t: threading.Thread | None = None

    @abstractmethod
    def read(self) -> object:
        """One reading (None: nothing to keep this time)."""

    def __enter__(self) -> Sampler:
        self.samples = []
        self._stop.clear()

        def loop() -> None:
            while not self._stop.is_set():
                v = self.read()
                if v is not None:
                    self.samples.append(v)
                time.sleep(self.period_s)

        self._t = threading.Thread(target=loop, daemon=True)
        self._t.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._t:
            self._t.join()


class UtilSampler(Sampler):
    """Scrapes `lab_gpu_utilization_ratio` from the lab's exporter (workloads.exporters) every `period_s`."""

    def __init__(self, period_s: float = 0.2) -> None:
        from workloads.exporters.server import serve

        super().__init__(period_s)
        self.port = free_port()
        serve(self.port)

    def read(self) -> float | None:
        body = urllib.request.urlopen(f"http://127.0.0.1:{self.port}/metrics", timeout=5).read().decode()
        m = re.search(r"^lab_gpu_utilization_ratio\{[^}]*\} ([0-9.eE+-]+)$", body, re.M)
        return float(m.group(1)) if m else None

    def mean_pct(self, skip: int = 0) -> float:
        s = self.samples[skip:] or self.samples
        return float(np.mean(s) * 100) if s else float("nan")


class NvmlSampler(Sampler):
    """Device memory in use (MiB) and utilisation (%) of GPU 0, read every `period_s` on a thread (NVML)."""

    def __init__(self, period_s: float) -> None:
        import pynvml

        super().__init__(period_s)
        pynvml.nvmlInit()
        self._nvml = pynvml
        self._h = pynvml.nvmlDeviceGetHandleByIndex(0)

    def read(self) -> tuple[float, float, float]:
        """(epoch s, MiB in use, utilisation %)."""
        mem = self._nvml.nvmlDeviceGetMemoryInfo(self._h).used / 2**20
        util = float(self._nvml.nvmlDeviceGetUtilizationRates(self._h).gpu)
        return time.time(), mem, util


def during(sampler: UtilSampler, fn: Callable[[], object]) -> tuple[object, float]:
    with sampler:
        out = fn()
    return out, sampler.mean_pct()
