"""The observed local platform (Triton, lab exporter, webhook, Alertmanager, Prometheus), started through the
runner's context, so the data plane never imports the control plane's process management:

    with observed_platform(ctx.platform, ctx.workdir / "stack", scrape_interval="1s") as s:
        s.prom.wait_for("up", timeout_s=30)

Tests pass a factory that builds `ailab.local.platform.Platform(..., free_ports=True)` instead of `ctx.platform`.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ailab.contract import LocalPlatform
from ailab.contract.experiment import PlatformFactory
from workloads.observability.prom import Prom

SERVICES = ["triton", "exporter", "webhook", "alertmanager", "prometheus"]
MODEL = "mlp"
# The Triton service always exports latency summaries; the dashboards' cache-hit panel also needs a response cache.
CACHE_BYTES = 16 << 20


@dataclass
class Stack:
    platform: LocalPlatform
    prom: Prom
    alertmanager_url: str
    triton_http: str  # host:port
    targets_dir: Path  # file_sd files the local Prometheus watches (targets/loadgen-*.json)
    notifications: Path  # what the webhook receiver recorded, one JSON line per notification
    rules_dir: Path  # the rule files the local Prometheus loads


def model_repository(dest: Path) -> Path:
    """The MLP with dynamic batching and the response cache on (the serving area's repository builder)."""
    from workloads.serving.modelspec import DynamicBatching  # imported late: pulls in tritonclient's protobufs
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
    start: PlatformFactory,
    state_dir: Path,
    scrape_interval: str = "1s",
    p99_threshold_s: float | None = None,
    alert_for: str | None = None,
    services: list[str] | None = None,
    extra_options: dict[str, Any] | None = None,
) -> Iterator[Stack]:
    """Start the observed platform on free ports under `state_dir` with `start`; stop exactly it on exit.

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
    with start(services=names, state_dir=state_dir, options=opts) as p:
        yield Stack(
            platform=p,
            prom=Prom(p.url("prometheus", "http")),
            alertmanager_url=p.url("alertmanager", "http") if "alertmanager" in names else "",
            triton_http=p.address("triton", "http") if "triton" in names else "",
            targets_dir=state_dir / "prometheus" / "targets",
            notifications=state_dir / "data" / "webhook" / "notifications.jsonl",
            rules_dir=state_dir / "prometheus" / "rules",
        )
