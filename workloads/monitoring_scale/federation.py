"""Two-level federation on the local platform: a child Prometheus scraping a synthetic fleet with a recording rule,
and the global Prometheus (ailab/local/services/prometheus_global.py) federating what `match[]` selects."""

from __future__ import annotations

import json
import statistics
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ailab.contract import LocalPlatform
from ailab.contract.experiment import PlatformFactory
from ailab.contract.ports import free_port
from workloads.monitoring_scale.stores import announce
from workloads.monitoring_scale.synth import FlatExporter
from workloads.observability.metering import Usage, measure_usage
from workloads.observability.prom import Prom

METRIC = "lab_synth_series"
RECORD = f"shard:{METRIC}:rate1m"
RAW_QUERY = f"sum by (shard) (rate({METRIC}[1m]))"
AGGREGATES = [f'{{__name__="{RECORD}"}}']  # the federation best practice: only aggregated series go up
ALL_RAW = [f'{{__name__="{METRIC}"}}']  # the anti-pattern: every raw series of the child


def child_rules() -> dict[str, dict[str, Any]]:
    return {"fleet.yaml": {"groups": [{"name": "fleet", "rules": [{"record": RECORD, "expr": RAW_QUERY}]}]}}


@dataclass
class Fed:
    platform: LocalPlatform
    child: Prom
    glob: Prom | None
    config: Path | None  # the global Prometheus' generated config


@contextmanager
def synthetic_fleet(series: int) -> Iterator[tuple[FlatExporter, int]]:
    exporter = FlatExporter(series, metric=METRIC)
    port = free_port()
    exporter.serve(port)
    try:
        yield exporter, port
    finally:
        exporter.close()


@contextmanager
def federation(
    start: PlatformFactory,
    state_dir: Path,
    exporter_port: int,
    match: list[str] | None,
    child_interval: str = "5s",
    global_interval: str = "15s",
) -> Iterator[Fed]:
    """The child (and, with `match`, the global Prometheus federating it) under `state_dir`, fresh data."""
    import shutil

    for d in ("prometheus", "prometheus_global"):
        shutil.rmtree(state_dir / "data" / d, ignore_errors=True)
    target = announce(state_dir / "prometheus" / "targets", exporter_port, {"job": "synthetic"})
    opts: dict[str, Any] = {
        "prometheus.scrape": [],
        "prometheus.scrape_interval": child_interval,
        "prometheus.extra_rules": child_rules(),
    }
    services = ["prometheus"]
    if match is not None:
        services.append("prometheus_global")
        opts |= {"prometheus_global.match": match, "prometheus_global.scrape_interval": global_interval}
    try:
        with start(services=services, state_dir=state_dir, options=opts) as p:
            child = Prom(p.url("prometheus"))
            glob = Prom(p.url("prometheus_global")) if match is not None else None
            yield Fed(p, child, glob, state_dir / "prometheus_global" / "prometheus.yaml" if glob else None)
    finally:
        target.unlink(missing_ok=True)


def federated_equal(child: Prom, glob: Prom, expr: str, key: str) -> tuple[int, int]:
    """(series compared, series equal): each global series' newest sample against the child's value at that same
    timestamp (federation keeps the child's timestamps)."""
    compared = equal = 0
    for s in glob.query(f"timestamp({expr})"):
        ts = float(s["value"][1])
        label = s["metric"].get(key)
        gv = glob.query(f'{expr}{{{key}="{label}"}}', at=ts)
        cv = child.query(f'{expr}{{{key}="{label}"}}', at=ts)
        if gv and cv:
            compared += 1
            a, b = float(gv[0]["value"][1]), float(cv[0]["value"][1])
            equal += abs(a - b) <= 1e-9 * max(1.0, abs(a), abs(b))
    return compared, equal


def lag_s(child: Prom, glob: Prom, expr: str, polls: int = 10) -> float:
    """Median over `polls` of how far the global's newest sample of `expr` trails the child's, s."""
    lags = []
    for _ in range(polls):
        a, b = child.value(f"max(timestamp({expr}))"), glob.value(f"max(timestamp({expr}))")
        if a is not None and b is not None:
            lags.append(a - b)
        time.sleep(1)
    return statistics.median(lags) if lags else float("nan")


def federate_job(config: Path) -> str:
    """The global config's federate job, as it was generated (shown in the result)."""
    import yaml

    cfg = yaml.safe_load(config.read_text())
    job = next(j for j in cfg["scrape_configs"] if j["job_name"] == "federate")
    return json.dumps(job, sort_keys=True)


def usage_of(pids: dict[str, int], seconds: float) -> dict[str, Usage]:
    """CPU share and RSS of several processes over the same `seconds`, measured side by side."""
    out: dict[str, Usage] = {}

    def one(name: str, pid: int) -> None:
        out[name] = measure_usage(pid, seconds)

    threads = [threading.Thread(target=one, args=(k, v)) for k, v in pids.items()]
    for x in threads:
        x.start()
    for x in threads:
        x.join()
    return out


def head_series(prom: Prom) -> int:
    """Series in the head block now, from the TSDB status API (not from a self-scrape that may be 15 s old)."""
    return int(prom.get("/api/v1/status/tsdb")["headStats"]["numSeries"])
