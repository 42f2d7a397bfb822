"""The local observability runners as `lab run` calls them: a Context whose platform starts the real processes
(tritonserver, the exporter, Prometheus, Alertmanager, the webhook receiver) on free ports. Short windows; the
numbers are not checked (this host is shared and loaded), what each table must say is."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from ailab.contract import Context
from ailab.local.platform import Platform
from workloads.observability.experiments import alert_routes, relabeling, scrape_cost

pytestmark = pytest.mark.integration


def local_platform(
    services: list[str], state_dir: Path, options: dict[str, Any] | None = None, supervise: bool = False
) -> Platform:
    return Platform(services=services, state_dir=state_dir, free_ports=True, options=options, supervise=supervise)


def _ctx(tmp_path: Path, exp: str) -> Context:
    return Context(experiment_id=exp, device="cpu", quick=True, workdir=tmp_path, platform=local_platform)


def test_routes_drill_sends_each_severity_to_its_receiver_and_inhibits_the_warning(tmp_path: Path) -> None:
    out = alert_routes.routes_drill(_ctx(tmp_path, "d13.e5"), alert_routes.RoutesDrillParams(settle_s=1))
    rows = {r[0]: r for r in out.tables[0].rows}
    assert rows["DrillCritical"][3] == "critical" and rows["DrillWarningAlone"][3] == "warning"
    assert rows["DrillNoSeverity"][3] == "warning"
    assert rows["DrillWarningInhibited"][3:] == ["-", "-", "yes"]


def test_relabeling_keeps_the_pods_the_committed_rules_select(tmp_path: Path) -> None:
    out = relabeling.k8s_relabeling(_ctx(tmp_path, "d13.e3"))
    kept = {r[0]: r[2] for r in out.tables[0].rows}
    assert kept == {"triton-0": "yes", "dcgm-exporter-abc": "yes", "node-exporter-xyz": "yes",
                    "lab-exporter-1": "yes", "redis-0": "dropped", "batch-job": "dropped"}  # fmt: skip
    annotated = next(r for r in out.tables[0].rows if r[0] == "lab-exporter-1")
    assert json.loads(annotated[4])["job"] == "lab-exporter"
    assert out.substitute == relabeling.FILE_SD_PODS  # discovery itself needs a cluster


def test_scrape_cost_prometheus_scrapes_the_stacks_triton(tmp_path: Path) -> None:
    """The per-interval Prometheus finds the stack's Triton through file_sd: its series get real scrapes."""
    p = scrape_cost.ScrapeCostParams(intervals=["1s"], window_s=4, rps=10)
    out = scrape_cost.scrape_interval_cost(_ctx(tmp_path, "d06.e1"), p)
    (row,) = out.tables[0].rows
    assert row[0] == "1s" and row[1] > 0 and row[3] > 0 and row[4] >= 2
