"""The two stores under test, as a runner sees them: Prometheus (TSDB blocks backfilled with promtool) and
VictoriaMetrics (history imported over HTTP), timed PromQL queries against either, and what each holds on disk."""

from __future__ import annotations

import json
import math
import os
import shutil
import subprocess
import time
import urllib.parse
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from workloads.exporters.traffic import register_target
from workloads.monitoring_scale.synth import Spec, import_lines, write_openmetrics
from workloads.observability.prom import Prom, PromError

DAY = 86400.0


def backfill_prometheus(series: Spec, data_dir: Path, start: float, end: float, step_s: float, tmp: Path) -> int:
    """History written as TSDB blocks into `data_dir` with `promtool tsdb create-blocks-from openmetrics`.

    One input file per day: promtool re-reads its whole input for every 2 h block it cuts, so a month in one file
    costs 360 passes over a month of samples; a file per day costs 12 passes over a day. Samples written.
    """
    promtool = shutil.which("promtool")
    if promtool is None:
        raise PromError("promtool not found (apt-get install prometheus)")
    tmp.mkdir(parents=True, exist_ok=True)
    data_dir.mkdir(parents=True, exist_ok=True)
    total = 0
    t = start
    while t < end:
        stop = min(t + DAY, end)
        f = tmp / "history.om"
        total += write_openmetrics(series, f, t, stop - step_s / 2, step_s)
        p = subprocess.run([promtool, "tsdb", "create-blocks-from", "openmetrics", "-q", str(f), str(data_dir)],
                           capture_output=True, text=True, check=False)  # fmt: skip
        if p.returncode != 0:
            raise PromError(f"promtool create-blocks-from openmetrics: {(p.stdout + p.stderr).strip()[-400:]}")
        f.unlink()
        t = stop
    return total


def import_victoriametrics(url: str, series: Spec, start: float, end: float, step_s: float) -> None:
    """The same history imported into VictoriaMetrics, then flushed so that queries and disk sizes see all of it."""
    t = start
    while t < end:
        stop = min(t + DAY, end)
        for body in import_lines(series, t, stop - step_s / 2, step_s):
            req = urllib.request.Request(f"{url}/api/v1/import/prometheus", data=body, method="POST")
            urllib.request.urlopen(req, timeout=120).close()
        t = stop
    flush_victoriametrics(url)


def flush_victoriametrics(url: str) -> None:
    urllib.request.urlopen(f"{url}/internal/force_flush", timeout=60).close()


def wait_compacted(prom: Prom, quiet_s: float = 70, limit_s: float = 900) -> tuple[int, int]:
    """Wait until Prometheus has compacted the backfilled 2 h blocks (block count unchanged for `quiet_s`, which
    spans one of its one-minute compaction cycles); (blocks before, blocks after)."""
    first = int(prom.wait_for("prometheus_tsdb_blocks_loaded", 60))
    last, since = first, time.monotonic()
    deadline = time.monotonic() + limit_s
    while time.monotonic() < deadline and time.monotonic() - since < quiet_s:
        time.sleep(5)
        now = int(prom.value("prometheus_tsdb_blocks_loaded") or 0)
        if now != last:
            last, since = now, time.monotonic()
    return first, last


@dataclass
class Timed:
    ms: float  # wall time of the HTTP query, client side
    series: int  # series in the result
    points: int  # points in the result
    values: dict[str, list[tuple[float, float]]]  # series labels (sorted JSON) -> points


def query_range(url: str, expr: str, start: float, end: float, step: float, nocache: bool = True) -> Timed:
    """One /api/v1/query_range, timed; `nocache` also turns off VictoriaMetrics' rollup result cache
    (Prometheus ignores the parameter), so every repeat computes from stored samples."""
    params: dict[str, Any] = {"query": expr, "start": start, "end": end, "step": step}
    if nocache:
        params["nocache"] = 1
    t0 = time.perf_counter()
    with urllib.request.urlopen(f"{url}/api/v1/query_range?{urllib.parse.urlencode(params)}", timeout=300) as r:
        body = json.loads(r.read())
    ms = (time.perf_counter() - t0) * 1000
    if body.get("status") != "success":
        raise PromError(f"{url} {expr}: {body.get('error')}")
    res = body["data"]["result"]
    values = {json.dumps(s["metric"], sort_keys=True): [(float(t), float(v)) for t, v in s["values"]] for s in res}
    return Timed(ms, len(res), sum(len(s["values"]) for s in res), values)


def timed_query(url: str, expr: str) -> float:
    """Wall time of one instant /api/v1/query, ms."""
    t0 = time.perf_counter()
    with urllib.request.urlopen(f"{url}/api/v1/query?{urllib.parse.urlencode({'query': expr})}", timeout=300) as r:
        body = json.loads(r.read())
    if body.get("status") != "success":
        raise PromError(f"{url} {expr}: {body.get('error')}")
    return (time.perf_counter() - t0) * 1000


def relative_gap(a: dict[str, list[tuple[float, float]]], b: dict[str, list[tuple[float, float]]]) -> float:
    """Median relative difference of the values two stores return at the same series and timestamps (0 = equal)."""
    diffs = []
    for key, pts in a.items():
        other = dict(b.get(key, []))
        for t, v in pts:
            if t in other and (v or other[t]):
                diffs.append(abs(v - other[t]) / max(abs(v), abs(other[t])))
    diffs.sort()
    return diffs[len(diffs) // 2] if diffs else float("nan")


def nearest_rank(values: list[float], q: float) -> float:
    """The q-quantile as an observed value (nearest rank), as the lab's other percentiles."""
    v = sorted(values)
    return v[max(0, min(len(v) - 1, math.ceil(q * len(v)) - 1))]


def dir_bytes(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())


def block_stats(data_dir: Path) -> tuple[int, int, int]:
    """(samples, series, chunk bytes) summed over the persisted TSDB blocks' meta.json and chunks/."""
    samples = series = size = 0
    for meta in data_dir.glob("*/meta.json"):
        stats = json.loads(meta.read_text()).get("stats", {})
        samples += int(stats.get("numSamples", 0))
        series += int(stats.get("numSeries", 0))
        size += dir_bytes(meta.parent / "chunks")
    return samples, series, size


def vm_metric(url: str, name: str) -> dict[str, float]:
    """A VictoriaMetrics self-metric from /metrics: label text -> value."""
    with urllib.request.urlopen(f"{url}/metrics", timeout=30) as r:
        text = r.read().decode()
    out = {}
    for line in text.splitlines():
        if line.startswith(name + "{") or line.startswith(name + " "):
            key, _, val = line.rpartition(" ")
            out[key[len(name) :]] = float(val)
    return out


def announce(targets_dir: Path, port: int, labels: dict[str, str]) -> Path:
    """The only file_sd target in `targets_dir`: targets left by an earlier run in the same workdir (their exporter
    gone, `up` 0) are removed first, so a query by job never reads a dead target's series."""
    targets_dir.mkdir(parents=True, exist_ok=True)
    for old in targets_dir.glob("loadgen-*.json"):
        old.unlink()
    return register_target(targets_dir, port, labels)


def host_note() -> str:
    la = os.getloadavg()
    return f"host: {os.cpu_count()} cores, load average {la[0]:.1f}/{la[1]:.1f}/{la[2]:.1f} (1/5/15 min) at start"
