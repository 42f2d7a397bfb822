"""The webhook receiver records Alertmanager's notifications with the receiver named by the URL path."""

from __future__ import annotations

import json
import threading
import urllib.request
from http.server import ThreadingHTTPServer
from pathlib import Path

from ailab.observability import alertmanager, webhook
from workloads.observability import notifications


def test_records_notifications_by_receiver(tmp_path: Path) -> None:
    out = tmp_path / "n.jsonl"
    srv = ThreadingHTTPServer(("127.0.0.1", 0), webhook.make_handler(out))
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    try:
        body = {"status": "firing", "alerts": [{"status": "firing", "labels": {"alertname": "GPUTemperatureHigh"}}]}
        req = urllib.request.Request(
            f"http://127.0.0.1:{srv.server_port}/critical", data=json.dumps(body).encode(), method="POST"
        )
        with urllib.request.urlopen(req, timeout=5) as r:
            assert r.status == 200
    finally:
        srv.shutdown()
    got = notifications.alerts(out, "GPUTemperatureHigh")
    assert [a["receiver"] for a in got] == ["critical"]
    assert notifications.alerts(out, "GPUTemperatureHigh", "resolved") == []


def test_routing_tree_sends_each_severity_to_its_own_receiver() -> None:
    cfg = alertmanager.config()
    routes = {r["matchers"][0]: r["receiver"] for r in cfg["route"]["routes"]}
    assert routes == {'severity="critical"': "critical", 'severity="warning"': "warning"}
    assert alertmanager.undefined_receivers(cfg) == []
    assert cfg["inhibit_rules"][0]["source_matchers"] == ['severity="critical"']
