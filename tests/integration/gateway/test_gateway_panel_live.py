"""d40.e5 for real, short: HAProxy in front of tritonserver (two versions of the MLP) under load while the platform's
Prometheus scrapes HAProxy's exporter every second; the gateway dashboard's panels are rendered from that Prometheus.
Nothing is mocked: the split panel must show the weights HAProxy routed with (70:30, then 50:50)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ailab.contract import Context
from ailab.local.services import haproxy
from ailab.runner import local_platform

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(haproxy.binary() is None, reason="haproxy not installed (apt-get install haproxy)"),
]


def test_split_panel_is_rendered_from_live_prometheus_data(tmp_path) -> None:
    from workloads.gateway.experiments.routing import MetricsParams, split_metrics
    from workloads.gateway.stack import SPLIT_PANEL

    ctx = Context(experiment_id="test", device="cpu", quick=True, workdir=tmp_path, platform=local_platform)
    out = split_metrics(ctx, MetricsParams(weights=[[70, 30], [50, 50]], phase_s=6.0, concurrency=4))
    pics = next(t for t in out.tables if t.name == "panel_pictures")
    rows = {r[0]: r for r in pics.rows}
    assert set(rows) == {SPLIT_PANEL, "Requests by server", "Server weight"}
    for title, series, points, _unit, error in rows.values():
        assert error == "none", title
        assert series >= 2 and points >= 6, f"panel {title!r} got no data"
    for title, path in out.artifacts.items():
        assert Path(path).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", title
    index = json.loads((tmp_path / "panels-quick" / "index.json").read_text())
    split = next(p for p in index["panels"] if p["title"] == SPLIT_PANEL)
    assert set(split["lines"]) == {"v1", "v2"}  # legend by server
    v1 = dict(split["lines"]["v1"])
    v2 = dict(split["lines"]["v2"])
    for t in v1.keys() & v2.keys():
        assert v1[t] + v2[t] == pytest.approx(100.0, abs=0.01)  # shares of the same responses
    # each phase's panel mean (points whose rate window lies inside the phase) follows the weights
    exp = next(t for t in out.tables if t.name == "exporter_split")
    col = [c.name for c in exp.columns].index("v1_from_panel")
    assert [round(r[col] / 10) for r in exp.rows] == [7, 5], exp.rows
