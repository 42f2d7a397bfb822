"""The observed local platform (Triton, lab exporter, webhook, Alertmanager, Prometheus) and a Prometheus API client.

Used by the integration tests and the d06/d13/d14 experiments:

    with observed_platform(tmp, scrape_interval="1s") as s:
        s.prom.wait_for("up", timeout_s=30)
"""

from __future__ import annotations

import json
import shutil
import time
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ailab.local.platform import Platform

SERVICES = ["triton", "exporter", "webhook", "alertmanager", "prometheus"]
MODEL = "mlp"
# The Triton service always exports latency summaries; the dashboards' cache-hit panel also needs a response cache.
CACHE_BYTES = 16 << 20


class PromError(RuntimeError):
    """A Prometheus API call failed; the message has the query and Prometheus' error."""


@dataclass
class Prom:
    """Minimal Prometheus HTTP API client (instant queries, exemplars, reloads)."""

    url: str

    def get(self, path: str, params: dict[str, Any] | None = None, timeout: float = 30) -> Any:
        q = f"?{urllib.parse.urlencode(params)}" if params else ""
        try:
            with urllib.request.urlopen(f"{self.url}{path}{q}", timeout=timeout) as r:
                body = json.loads(r.read())
        except urllib.error.HTTPError as exc:
            body = json.loads(exc.read() or b"{}")
        if body.get("status") != "success":
            raise PromError(f"{path} {params}: {body.get('errorType')}: {body.get('error')}")
        return body["data"]

    def query(self, expr: str, at: float | None = None) -> list[dict[str, Any]]:
        params: dict[str, Any] = {"query": expr}
        if at is not None:
            params["time"] = at
        return self.get("/api/v1/query", params)["result"]

    def value(self, expr: str) -> float | None:
        """The first sample's value of an instant query, or None when it returns nothing."""
        res = self.query(expr)
        return float(res[0]["value"][1]) if res else None

    def wait_for(self, expr: str, timeout_s: float = 60, cond: Callable[[float], bool] = lambda v: True) -> float:
        """Poll until `expr` returns a sample whose value satisfies `cond`; its value. PromError on timeout."""
        deadline = time.monotonic() + timeout_s
        last: float | None = None
        while time.monotonic() < deadline:
            last = self.value(expr)
            if last is not None and cond(last):
                return last
            time.sleep(0.25)
        raise PromError(f"{expr!r}: no satisfying sample within {timeout_s} s (last value {last})")

    def reload(self) -> None:
        req = urllib.request.Request(f"{self.url}/-/reload", method="POST")
        with urllib.request.urlopen(req, timeout=30):
            pass

    def exemplars(self, expr: str, start: float, end: float) -> list[dict[str, Any]]:
        return self.get("/api/v1/query_exemplars", {"query": expr, "start": start, "end": end})


@dataclass
class Stack:
    platform: Platform
    prom: Prom
    alertmanager_url: str
    triton_http: str  # host:port
    targets_dir: Path
    notifications: Path
    rules_dir: Path


def model_repository(dest: Path) -> Path:
    """The MLP with dynamic batching and the response cache on (the serving team's repository builder)."""
    from workloads.serving.modelspec import DynamicBatching
    from workloads.serving.repository import build_repository, mlp_spec

    spec = mlp_spec(
        MODEL,
        dynamic_batching=DynamicBatching(preferred_batch_sizes=(4, 8), max_queue_delay_us=2000),
        response_cache=True,
    )
    return build_repository([spec], dest)


def fresh_data(state_dir: Path) -> None:
    """Remove the observability services' data directories under `state_dir` (only those)."""
    for svc in ("prometheus", "alertmanager", "webhook"):
        shutil.rmtree(state_dir / "data" / svc, ignore_errors=True)


@contextmanager
def observed_platform(
    state_dir: Path,
    scrape_interval: str = "1s",
    p99_threshold_s: float | None = None,
    alert_for: str | None = None,
    services: list[str] | None = None,
    extra_options: dict[str, Any] | None = None,
) -> Iterator[Stack]:
    """Start the observed platform on free ports under `state_dir`; stop exactly it on exit.

    Data of an earlier run under the same `state_dir` (TSDB, Alertmanager state, recorded notifications) is
    removed first: a replayed WAL or an old notification would otherwise leak into this run's measurements.
    """
    names = services or SERVICES
    fresh_data(state_dir)
    opts: dict[str, Any] = {
        "prometheus.scrape": [n for n in ("triton", "exporter", "alertmanager") if n in names],
        "prometheus.scrape_interval": scrape_interval,
    }
    if "triton" in names:
        opts["triton.model_repository"] = model_repository(state_dir / "models")
        opts["triton.cache_size_bytes"] = CACHE_BYTES
    if p99_threshold_s is not None:
        opts["prometheus.p99_threshold_s"] = p99_threshold_s
    if alert_for is not None:
        opts["prometheus.alert_for"] = alert_for
    opts.update(extra_options or {})
    p = Platform(services=names, state_dir=state_dir, free_ports=True, options=opts)
    with p:
        yield Stack(
            platform=p,
            prom=Prom(f"http://127.0.0.1:{p.port('prometheus', 'http')}"),
            alertmanager_url=f"http://127.0.0.1:{p.port('alertmanager', 'http')}" if "alertmanager" in names else "",
            triton_http=f"127.0.0.1:{p.port('triton', 'http')}" if "triton" in names else "",
            targets_dir=state_dir / "prometheus" / "targets",
            notifications=state_dir / "data" / "webhook" / "notifications.jsonl",
            rules_dir=state_dir / "prometheus" / "rules",
        )
