"""The local observability runners as `lab run` calls them: a Context whose platform starts the real processes
(tritonserver, the exporter, Prometheus, Alertmanager, the webhook receiver) on free ports. Short windows; the
numbers are not checked (this host is shared and loaded), what each table must say is."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from ailab.contract import Context
from ailab.local.platform import Platform
from workloads.observability.experiments import alert_routes, relabeling, scrape_cost

pytestmark = pytest.mark.integration


@pytest.fixture
def ctx(tmp_path: Path, local_platform: Callable[..., Platform]) -> Context:
    return Context(experiment_id="d13", device="cpu", quick=True, workdir=tmp_path, platform=local_platform)


def test_routes_drill_sends_each_severity_to_its_receiver_and_inhibits_the_warning(ctx: Context) -> None:
    out = alert_routes.routes_drill(ctx, alert_routes.RoutesDrillParams(settle_s=1))
    rows = {r[0]: r for r in out.tables[0].rows}
    assert rows["DrillCritical"][3] == "critical" and rows["DrillWarningAlone"][3] == "warning"
    assert rows["DrillNoSeverity"][3] == "warning"
    assert rows["DrillWarningInhibited"][3:] == ["-", "-", "yes"]


def test_relabeling_keeps_the_pods_the_committed_rules_select(ctx: Context) -> None:
    out = relabeling.k8s_relabeling(ctx)
    kept = {r[0]: r[2] for r in out.tables[0].rows}
    assert kept == {"triton-0": "yes", "dcgm-exporter-abc": "yes", "node-exporter-xyz": "yes",
                    "lab-exporter-1": "yes", "redis-0": "dropped", "batch-job": "dropped"}  # fmt: skip
    annotated = next(r for r in out.tables[0].rows if r[0] == "lab-exporter-1")
    assert json.loads(annotated[4])["job"] == "lab-exporter"
    assert out.substitute == relabeling.FILE_SD_PODS  # discovery itself needs a cluster


def test_scrape_cost_prometheus_scrapes_the_stacks_triton(ctx: Context) -> None:
    """The per-interval Prometheus finds the stack's Triton through file_sd: its series get real scrapes."""
    p = scrape_cost.ScrapeCostParams(intervals=["1s"], window_s=4, rps=10)
    out = scrape_cost.scrape_interval_cost(ctx, p)
    (row,) = out.tables[0].rows
    assert row[0] == "1s" and row[1] > 0 and row[3] > 0 and row[4] >= 2
