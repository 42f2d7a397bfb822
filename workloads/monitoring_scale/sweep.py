"""A growing number of active series scraped by Prometheus (and pushed to VictoriaMetrics): the shared core of
the storage-cost (d55.e4) and cardinality (d68.e5) experiments."""

from __future__ import annotations

import contextlib
import shutil
import threading
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import psutil

from ailab.contract import LocalPlatform
from ailab.contract.experiment import PlatformFactory
from ailab.contract.ports import free_port
from workloads.monitoring_scale.stores import announce
from workloads.monitoring_scale.synth import FlatExporter
from workloads.observability.prom import Prom

METRIC = "lab_synth_series"


@dataclass
class Rig:
    platform: LocalPlatform
    prom: Prom
    exporter: FlatExporter
    vm_url: str | None
    interval_s: float


@contextmanager
def rig(start: PlatformFactory, state_dir: Path, series: int, interval: str, with_vm: bool = False) -> Iterator[Rig]:
    """Prometheus scraping a FlatExporter of `series` series every `interval` (+ VictoriaMetrics, fed the same
    exposition by a pusher at the same interval); fresh data; everything stopped on exit."""
    for d in ("prometheus", "victoriametrics"):
        shutil.rmtree(state_dir / "data" / d, ignore_errors=True)
    exporter = FlatExporter(series, metric=METRIC)
    port = free_port()
    exporter.serve(port)
    target = announce(state_dir / "prometheus" / "targets", port, {"job": "synthetic"})
    opts = {"prometheus.scrape": [], "prometheus.scrape_interval": interval, "victoriametrics.latency_offset": "1s"}
    services = ["prometheus"] + (["victoriametrics"] if with_vm else [])
    stop = threading.Event()
    pusher = None
    try:
        with start(services=services, state_dir=state_dir, options=opts) as p:
            vm = p.url("victoriametrics") if with_vm else None
            r = Rig(p, Prom(p.url("prometheus")), exporter, vm, float(interval.rstrip("s")))
            if vm:
                pusher = threading.Thread(target=_push, args=(exporter, vm, r.interval_s, stop), daemon=True)
                pusher.start()
            try:
                yield r
            finally:
                stop.set()
                if pusher:
                    pusher.join(timeout=120)
    finally:
        target.unlink(missing_ok=True)
        exporter.close()


def _push(exporter: FlatExporter, vm: str, interval_s: float, stop: threading.Event) -> None:
    """Import the exporter's current exposition into VictoriaMetrics every interval (it stamps arrival time)."""
    while not stop.is_set():
        t0 = time.monotonic()
        body = exporter.render(time.time())
        req = urllib.request.Request(f"{vm}/api/v1/import/prometheus", data=body, method="POST")
        with contextlib.suppress(OSError):  # VictoriaMetrics stopping at the end of the run
            urllib.request.urlopen(req, timeout=120).close()
        stop.wait(max(0.0, interval_s - (time.monotonic() - t0)))


def wait_scrapes(r: Rig, series: int, scrapes: int, timeout_s: float) -> bool:
    """Until the head holds `series` exporter series and `scrapes` more scrapes succeeded; False on timeout."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        n = r.prom.value("scrape_samples_scraped{job='synthetic'}") or 0
        if n >= series:
            break
        time.sleep(1)
    else:
        return False
    time.sleep(scrapes * r.interval_s)
    return bool(r.prom.value("up{job='synthetic'}") == 1)


def rss_mib(pid: int) -> float:
    return psutil.Process(pid).memory_info().rss / 2**20


def vm_active_series(url: str) -> float:
    """Series VictoriaMetrics saw in the current hour (its own gauge)."""
    from workloads.monitoring_scale.stores import vm_metric

    return sum(v for k, v in vm_metric(url, "vm_cache_entries").items() if "storage/hour_metric_ids" in k)
