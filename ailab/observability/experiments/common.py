"""Helpers the observability experiments share: metered traffic, a Prometheus-only platform, process usage."""

from __future__ import annotations

import statistics
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psutil
from prometheus_client import start_http_server

from ailab.local.platform import Platform
from ailab.local.spec import free_port
from ailab.observability.stack import MODEL, Prom, Stack, fresh_data
from workloads.exporters.traffic import Traffic, TrafficSpec, register_target


@contextmanager
def metered_traffic(s: Stack, name: str = "main", **spec: Any) -> Iterator[Traffic]:
    """Traffic against the stack's Triton, its metrics announced to Prometheus via file_sd; removed on exit."""
    tr = Traffic(TrafficSpec(s.triton_http, MODEL, **spec))
    port = free_port()
    httpd, _ = start_http_server(port, addr="127.0.0.1", registry=tr.registry)
    target = register_target(s.targets_dir, port, {"generator": name})
    tr.start()
    try:
        yield tr
    finally:
        tr.stop()
        target.unlink(missing_ok=True)
        httpd.shutdown()


@contextmanager
def prometheus_for(
    s: Stack, state_dir: Path, scrape_interval: str, extra: dict[str, Any] | None = None
) -> Iterator[tuple[Prom, int]]:
    """A second, fresh Prometheus scraping the stack's Triton and exporter (one per setting under test); its PID."""
    fresh_data(state_dir)
    p = Platform(
        services=["prometheus"],
        state_dir=state_dir,
        free_ports=True,
        options={"prometheus.scrape": ["triton", "exporter"], "prometheus.scrape_interval": scrape_interval,
                 **(extra or {})},
    )  # fmt: skip
    for key in ("triton.metrics", "exporter.metrics"):
        svc, role = key.split(".")
        p.ctx.ports[key] = s.platform.port(svc, role)
    with p:
        yield Prom(p.url("prometheus")), p.record("prometheus").pid


def pid_of(p: Platform, service: str) -> int:
    return p.record(service).pid


@dataclass
class Usage:
    cpu_percent: float  # of one core, averaged over the window
    rss_mib: float  # at the end of the window


def measure_usage(pid: int, seconds: float) -> Usage:
    """CPU share and resident memory of a process over `seconds`."""
    proc = psutil.Process(pid)
    c0, t0 = proc.cpu_times(), time.monotonic()
    time.sleep(seconds)
    c1, t1 = proc.cpu_times(), time.monotonic()
    busy = (c1.user - c0.user) + (c1.system - c0.system)
    return Usage(100.0 * busy / (t1 - t0), proc.memory_info().rss / 2**20)


def query_range(prom: Prom, expr: str, start: float, end: float, step: float) -> list[tuple[float, float]]:
    """(time, value) points of the first series of a range query."""
    res = prom.get("/api/v1/query_range", {"query": expr, "start": start, "end": end, "step": step})["result"]
    return [(float(t), float(v)) for t, v in res[0]["values"]] if res else []


def cv_percent(values: list[float]) -> float:
    """Coefficient of variation (stdev / mean), %; 0 for fewer than two values."""
    if len(values) < 2 or not statistics.fmean(values):
        return 0.0
    return 100.0 * statistics.stdev(values) / statistics.fmean(values)


def exact_quantile(samples: list[float], q: float) -> float:
    """Nearest-rank quantile of raw samples."""
    xs = sorted(samples)
    return xs[min(len(xs) - 1, max(0, round(q * len(xs) + 0.5) - 1))] if xs else float("nan")


def histogram_quantile(q: float, bounds: tuple[float, ...], samples: list[float]) -> float:
    """Prometheus' histogram_quantile (linear interpolation inside the bucket) over raw samples."""
    counts = [sum(1 for x in samples if x <= b) for b in bounds] + [len(samples)]
    total = counts[-1]
    if not total:
        return float("nan")
    rank = q * total
    for i, c in enumerate(counts):
        if c >= rank:
            if i == len(bounds):
                return bounds[-1]  # in +Inf: Prometheus returns the highest finite bound
            lo = bounds[i - 1] if i else 0.0
            prev = counts[i - 1] if i else 0
            return lo + (bounds[i] - lo) * ((rank - prev) / (c - prev) if c > prev else 0)
    return bounds[-1]
