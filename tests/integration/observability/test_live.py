"""The observed local platform for real: tritonserver, the lab exporter, the load generator, Prometheus,
Alertmanager and the webhook receiver as processes; every dashboard query runs against the live Prometheus."""

from __future__ import annotations

import json
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from prometheus_client import start_http_server

from ailab.contract.paths import REPO_ROOT
from ailab.contract.ports import free_port
from ailab.local.platform import Platform
from ailab.local.registry import PlatformError
from ailab.observability.dashboards import concrete, panel_queries
from workloads.exporters.traffic import Traffic, TrafficSpec, register_target
from workloads.observability import notifications
from workloads.observability.stack import MODEL, Stack, observed_platform

pytestmark = pytest.mark.integration
DASHBOARDS = sorted((REPO_ROOT / "dashboards" / "grafana").glob("*.json"))


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory, local_platform: Callable[..., Platform]) -> Iterator[Stack]:
    """The platform under load; P99 threshold 0.4 ms and `for: 0s` so the generated P99 rules fire within seconds.

    The critical alert fires at twice the threshold (0.8 ms): below the lowest latency bucket (1 ms), so the
    interpolated P99 exceeds it however fast the host answers (1.0-2.0 ms latencies left a 1 ms threshold's
    critical alert silent on a fast run)."""
    with observed_platform(
        local_platform, tmp_path_factory.mktemp("obs"), "1s", p99_threshold_s=0.0004, alert_for="0s"
    ) as s:
        tr = Traffic(TrafficSpec(s.triton_http, MODEL, rps=30, workers=3, distinct_inputs=4))
        port = free_port()
        start_http_server(port, addr="127.0.0.1", registry=tr.registry)
        tr.start()
        register_target(s.targets_dir, port)
        s.prom.wait_for('up{job="loadgen"}', 60, lambda v: v == 1)
        s.prom.wait_for("model:nv_inference_request_success:rate1m", 60, lambda v: v > 0)
        yield s
        tr.stop()


def _all_queries() -> list[tuple[str, str, str, str]]:
    return [(f.name, *q) for f in DASHBOARDS for q in panel_queries(json.loads(f.read_text()))]


def test_every_panel_query_parses_and_local_panels_return_data(stack: Stack) -> None:
    deadline = time.monotonic() + 60  # the slowest series (cache hits, exemplar-bearing buckets) need a few scrapes
    pending = _all_queries()
    empty: list[str] = []
    while pending:
        empty = []
        still = []
        for f, title, scope, expr in pending:
            res = stack.prom.query(concrete(expr))  # PromError (failing the test) when it does not parse
            if scope == "local" and not res:
                still.append((f, title, scope, expr))
                empty.append(f"{f}: {title!r}: {expr}")
        pending = still
        if not pending or time.monotonic() > deadline:
            break
        time.sleep(1)
    assert not empty, "local panels without data:\n" + "\n".join(empty)


def test_exporter_and_triton_targets_are_up(stack: Stack) -> None:
    # over a window: with a 1 s scrape interval the scrape timeout is 1 s too, and a busy 2-core host can miss one
    up = {r["metric"]["job"]: r["value"][1] for r in stack.prom.query("max by (job) (max_over_time(up[20s]))")}
    assert up == {"prometheus": "1", "triton": "1", "lab-exporter": "1", "alertmanager": "1", "loadgen": "1"}
    assert stack.prom.query('lab_exporter_info{mode="host"}')  # no GPU here: the exporter says so


def test_exemplars_are_visible_through_the_query_api(stack: Stack) -> None:
    now = time.time()
    deadline = time.monotonic() + 30
    found: list[dict] = []
    while not found and time.monotonic() < deadline:
        found = stack.prom.exemplars("lab_loadgen_request_duration_seconds_bucket", now - 120, time.time())
        time.sleep(0.5)
    trace_ids = {e["labels"]["trace_id"] for s in found for e in s["exemplars"]}
    assert trace_ids and all(len(t) == 32 for t in trace_ids)


def test_p99_alert_from_real_metrics_reaches_the_webhook_and_inhibits_the_warning(stack: Stack) -> None:
    """Real latencies are over both thresholds (0.4 ms, 0.8 ms): the critical alert goes to the critical
    receiver and the warning it implies is inhibited in Alertmanager, never notified."""
    deadline = time.monotonic() + 90
    got: list[dict] = []
    while not got and time.monotonic() < deadline:
        got = notifications.alerts(stack.notifications, "TritonP99LatencyCritical")
        time.sleep(0.5)
    assert got, f"no TritonP99LatencyCritical notification in {stack.notifications}"
    assert got[0]["receiver"] == "critical" and got[0]["labels"]["model"] == MODEL
    with urllib.request.urlopen(f"{stack.alertmanager_url}/api/v2/alerts", timeout=10) as r:
        am = {a["labels"]["alertname"]: a["status"] for a in json.loads(r.read())}
    assert am["TritonP99LatencyHigh"]["state"] == "suppressed" and am["TritonP99LatencyHigh"]["inhibitedBy"]
    assert notifications.alerts(stack.notifications, "TritonP99LatencyHigh") == []


def test_prometheus_on_a_busy_port_fails_with_its_name_and_port(tmp_path: Path) -> None:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        busy = s.getsockname()[1]
        p = Platform(services=["prometheus"], state_dir=tmp_path, options={"prometheus.scrape": []})
        p.ctx.ports["prometheus.http"] = busy
        with pytest.raises(PlatformError, match=rf"prometheus.*{busy}"):
            p.up()


def test_prometheus_with_a_bad_rule_fails_with_its_log_tail(tmp_path: Path) -> None:
    bad = {"groups": [{"name": "bad", "rules": [{"record": "x:y", "expr": "sum(rate(up[1m])"}]}]}
    p = Platform(
        services=["prometheus"],
        state_dir=tmp_path,
        free_ports=True,
        options={"prometheus.scrape": [], "prometheus.extra_rules": {"bad.yaml": bad}},
    )
    with pytest.raises(PlatformError) as exc:
        p.up()
    assert "prometheus" in str(exc.value) and "bad.yaml" in str(exc.value)
    assert not threading.active_count() > 50  # nothing left spinning
