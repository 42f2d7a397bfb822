"""`lab dashboards snapshot` against a live Prometheus: tritonserver under load, the lab exporter and the load
generator scraped every second; every panel of the generated Triton and load-test dashboards becomes a PNG, and
every panel that has data on the embedded platform (scope "local") got data. Nothing is mocked."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from prometheus_client import start_http_server
from typer.testing import CliRunner

from ailab.cli import app
from ailab.contract.ports import free_port
from ailab.local.platform import Platform
from ailab.observability.dashboards import SCOPE_TAG
from workloads.exporters.traffic import Traffic, TrafficSpec, register_target
from workloads.observability.stack import MODEL, Stack, observed_platform

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def loaded(
    tmp_path_factory: pytest.TempPathFactory, telemetry_platform_factory: Callable[..., Platform]
) -> Iterator[tuple[Stack, float]]:
    with observed_platform(
        telemetry_platform_factory, tmp_path_factory.mktemp("snap"), "1s", services=["triton", "exporter", "prometheus"]
    ) as s:
        t0 = time.time()
        # many distinct inputs: with a handful every request hits the response cache, Triton executes nothing and the
        # batch-size panel (executions in the denominator) is honestly empty
        tr = Traffic(TrafficSpec(s.triton_http, MODEL, rps=30, workers=3, distinct_inputs=500))
        port = free_port()
        start_http_server(port, addr="127.0.0.1", registry=tr.registry)
        tr.start()
        register_target(s.targets_dir, port)
        s.prom.wait_for('up{job="loadgen"}', 60, lambda v: v == 1)
        # the slowest panel: the 1m recording rule needs a few scrapes of traffic
        s.prom.wait_for("model:nv_inference_request_success:rate1m", 90, lambda v: v > 0)
        time.sleep(5)
        yield s, t0
        tr.stop()


def _scope(panel: dict) -> str:
    desc = panel.get("description", "")
    return next((s for s, tag in SCOPE_TAG.items() if tag and desc.startswith(tag)), "local")


@pytest.mark.parametrize("name", ["triton", "loadtest"])
def test_every_panel_is_rendered_from_live_data(loaded: tuple[Stack, float], tmp_path: Path, name: str) -> None:
    s, t0 = loaded
    res = CliRunner().invoke(
        app,
        ["dashboards", "snapshot", name, "-o", str(tmp_path), "--prometheus", s.prom.url,
         "--from", str(t0), "--to", "now"],
    )  # fmt: skip
    assert res.exit_code == 0, res.output
    index = json.loads((tmp_path / "index.json").read_text())
    model = json.loads((tmp_path / "dashboard.json").read_text())
    assert [p["title"] for p in index["panels"]] == [p["title"] for p in model["panels"]]
    scopes = {p["title"]: _scope(p) for p in model["panels"]}
    for p in index["panels"]:
        png = tmp_path / p["png"]
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", p["title"]
        assert png.stat().st_size > 5000, p["title"]  # axes, labels and at least the frame
        assert not p["error"], (p["title"], p["error"])
        assert all("$" not in q for q in p["queries"]), p["queries"]  # every variable applied
        if scopes[p["title"]] == "local":
            assert p["series"] >= 1 and p["points"] >= 3, f"panel {p['title']!r} got no data: {p['queries']}"


def test_a_model_variable_narrows_the_queries(loaded: tuple[Stack, float], tmp_path: Path) -> None:
    s, t0 = loaded
    res = CliRunner().invoke(
        app,
        ["dashboards", "snapshot", "triton", "-o", str(tmp_path), "--prometheus", s.prom.url, "--from", str(t0),
         "--var", "model=nosuchmodel", "--panel", "QPS (successful requests)"],
    )  # fmt: skip
    assert res.exit_code == 0, res.output
    (panel,) = json.loads((tmp_path / "index.json").read_text())["panels"]
    assert 'model=~"nosuchmodel"' in panel["queries"][0]
    assert panel["series"] == 0  # no such model: the panel is drawn as "no data"
