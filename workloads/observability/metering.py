"""Metered traffic against the observed platform, a second Prometheus per setting under test, process usage."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psutil
from prometheus_client import start_http_server

from ailab.contract.experiment import PlatformFactory
from ailab.contract.ports import free_port
from workloads.exporters.traffic import Traffic, TrafficSpec, register_target
from workloads.observability.prom import Prom
from workloads.observability.stack import MODEL, Stack, fresh_data


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


def static_target(targets_dir: Path, job: str, address: str) -> None:
    """A file_sd target group whose `job` label names the job (Prometheus keeps a target's own job label)."""
    targets_dir.mkdir(parents=True, exist_ok=True)
    f = targets_dir / f"loadgen-{job}.json"
    tmp = f.with_suffix(".tmp")
    tmp.write_text(json.dumps([{"targets": [address], "labels": {"job": job}}]))
    os.replace(tmp, f)


@contextmanager
def prometheus_for(
    start: PlatformFactory, s: Stack, state_dir: Path, scrape_interval: str
) -> Iterator[tuple[Prom, int]]:
    """A second, fresh Prometheus scraping the stack's Triton and exporter (one per setting under test); its PID."""
    fresh_data(state_dir)
    opts = {"prometheus.scrape": [], "prometheus.scrape_interval": scrape_interval}
    targets = state_dir / "prometheus" / "targets"
    for job, svc in (("triton", "triton"), ("lab-exporter", "exporter")):
        static_target(targets, job, s.platform.address(svc, "metrics"))
    with start(services=["prometheus"], state_dir=state_dir, options=opts) as p:
        yield Prom(p.url("prometheus", "http")), p.record("prometheus").pid


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
