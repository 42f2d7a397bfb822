"""The telemetry platform: tritonserver (verbose request logs, optional request tracing) behind the HAProxy gateway
(JSON access log), the syslog-ng collector tailing both, and optionally Prometheus; started through the runner's
context (tests pass a factory building `Platform(..., free_ports=True)`), stopped exactly on exit.

    with telemetry_platform(ctx.platform, ctx.workdir / "stack", trace=True) as s:
        status = infer(s.gateway, "linear", "req-1")
"""

from __future__ import annotations

import json
import shutil
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ailab.contract import LocalPlatform
from ailab.contract.experiment import PlatformFactory
from workloads.telemetry import repository

# the collector starts first so that it tails every other service's log from its first line
SERVICES = ["syslogng", "triton", "haproxy"]
GATEWAY = {
    "frontends": [{"name": "api", "default_backend": "triton", "access_log": True}],
    "backends": [{"name": "triton", "servers": [{"name": "triton", "target": "triton.http"}]}],
}


@dataclass
class Stack:
    platform: LocalPlatform
    triton: str  # http://host:port of Triton
    gateway: str  # http://host:port of the HAProxy frontend ("" without haproxy)
    records: Path  # the collector's JSON lines ("" path without syslogng)
    logs: dict[str, Path]  # service -> its log file (what the collector tails)
    trace_file: Path | None  # Triton's trace file (parts .0, .1, ...) when tracing is on
    prometheus: str  # http://host:port ("" without prometheus)


def fresh(state_dir: Path) -> None:
    """Remove logs, collector state and data of an earlier run under `state_dir`: a line from an earlier run must
    not be counted as collected in this one."""
    for sub in ("logs", "syslogng", "data", "triton"):
        shutil.rmtree(state_dir / sub, ignore_errors=True)
    shutil.rmtree(state_dir / "prometheus" / "targets", ignore_errors=True)


@contextmanager
def telemetry_platform(
    start: PlatformFactory,
    state_dir: Path,
    trace: dict[str, Any] | None = None,
    services: list[str] | None = None,
    scrape_interval: str = "1s",
    log_verbose: int = 1,
) -> Iterator[Stack]:
    """Start the services (default SERVICES) on free ports under `state_dir`; `trace` is the triton.trace option."""
    names = services or SERVICES
    fresh(state_dir)
    opts: dict[str, Any] = {
        "triton.model_repository": repository.build(state_dir / "models"),
        "triton.log_verbose": log_verbose,
        "haproxy.spec": GATEWAY,
        "syslogng.sources": [n for n in ("triton", "haproxy", "prometheus") if n in names],
        "prometheus.scrape": ["triton"],
        "prometheus.scrape_interval": scrape_interval,
    }
    if trace is not None:
        opts["triton.trace"] = trace
    with start(services=names, state_dir=state_dir, options=opts) as p:
        info = (p.record("triton").info or {}) if "triton" in names else {}
        yield Stack(
            platform=p,
            triton=p.url("triton", "http"),
            gateway=p.url("haproxy", "api") if "haproxy" in names else "",
            records=Path((p.record("syslogng").info or {})["records"]) if "syslogng" in names else Path(),
            logs={n: Path(p.record(n).log) for n in names if n != "syslogng"},
            trace_file=Path(info["trace_file"]) if "trace_file" in info else None,
            prometheus=p.url("prometheus", "http") if "prometheus" in names else "",
        )


def infer(base: str, model: str, request_id: str, rows: int = 1, timeout_s: float = 30) -> int:
    """One HTTP/JSON inference (KServe v2) with a request id; the HTTP status (a 4xx/5xx is returned, not raised)."""
    data = [float(i % 7) for i in range(rows * repository.WIDTH)]
    body = {
        "id": request_id,
        "inputs": [{"name": "x", "shape": [rows, repository.WIDTH], "datatype": "FP32", "data": data}],
    }
    req = urllib.request.Request(
        f"{base}/v2/models/{model}/infer", data=json.dumps(body).encode(), headers={"Content-Type": "application/json"}
    )
    try:
        with urllib.request.urlopen(req, timeout=timeout_s) as r:
            r.read()
            return int(r.status)
    except urllib.error.HTTPError as exc:
        exc.read()
        return int(exc.code)


def read_records(path: Path) -> list[dict[str, Any]]:
    """The collector's records (one JSON object per line; a line still being written is skipped)."""
    out = []
    if not path.exists():
        return out
    for line in path.read_text(errors="replace").splitlines():
        try:
            rec = json.loads(line)
        except json.JSONDecodeError:
            continue
        if isinstance(rec, dict):
            out.append(rec)
    return out


def line_count(path: Path) -> int:
    """Complete non-empty lines in a log file: what the collector should hold (syslog-ng drops empty messages)."""
    if not path.exists():
        return 0
    with open(path, "rb") as f:
        return sum(1 for line in f if line.endswith(b"\n") and line.strip())
