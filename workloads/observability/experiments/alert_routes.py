"""Alerts from rule to receiver on local processes: the time of each link from a load step to the webhook
(d06.e5), and which receiver each severity reaches through the generated Alertmanager routing tree (d13.e5)."""

from __future__ import annotations

import json
import time
import urllib.request
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated

from pydantic import Field, StringConstraints

from ailab.contract import Context, Output, Params, Substitute, Table
from workloads.observability import notifications
from workloads.observability.drills import rel, until
from workloads.observability.metering import metered_traffic
from workloads.observability.rulefiles import set_p99_threshold
from workloads.observability.stack import observed_platform

P99 = "model:lab_loadgen_request_duration_seconds:p99_1m"
PROMETHEUS_ALERT = Substitute(
    instead_of="a Grafana-managed alert",
    used="the generated Prometheus alert rule, routed by Alertmanager to the webhook receiver",
    why="no Grafana server can be installed here; in the cluster the same rule runs in Prometheus",
)


class AlertChainParams(Params):
    threshold_factor: float = Field(default=3.0, gt=1, description="P99 threshold = factor x baseline P99")
    alert_for: Annotated[str, StringConstraints(pattern=r"^[0-9]+[sm]$")] = Field(
        default="15s", description="the alerts' `for:` during the drill, e.g. 15s, 0s"
    )
    base_rps: float = Field(default=10, gt=0, description="baseline load, req/s")
    baseline_s: float = Field(default=20, ge=0, description="baseline window before the threshold is set, s")
    step_workers: int = Field(default=16, ge=1, description="closed-loop workers of the load step")


class RoutesDrillParams(Params):
    wait_s: float = Field(default=15, gt=0, description="how long to wait for the expected notifications, s")
    settle_s: float = Field(default=3, ge=0, description="extra wait in which an inhibited alert could arrive, s")


def alert_chain(ctx: Context, p: AlertChainParams) -> Output:
    """A load step pushes P99 over the threshold; time of each link, load step -> webhook notification (s)."""
    t = Table.of("alert chain timing", [("stage", ""), ("time since load step", "s"), ("detail", "")])
    with (
        observed_platform(ctx.platform, ctx.workdir / "stack", "1s", p99_threshold_s=60.0, alert_for=p.alert_for) as s,
        metered_traffic(s, "base", rps=p.base_rps, workers=2),
    ):
        base = s.prom.wait_for(P99, 60)
        time.sleep(p.baseline_s)
        base = s.prom.value(f"max({P99})") or base
        threshold = round(max(base * p.threshold_factor, 0.005), 4)
        set_p99_threshold(s.rules_dir / "alerts.yaml", threshold)
        s.prom.reload()
        t0 = time.time()
        with metered_traffic(s, "step", rps=0, workers=p.step_workers):
            crossed = until(lambda: s.prom.value(f"max({P99}) > {threshold}") is not None, 120)
            firing = until(lambda: bool(s.prom.query('ALERTS{alertstate="firing", alertname=~"TritonP99.*"}')), 120)
            got = until(lambda: bool(_p99_notes(s.notifications)), 120)
            notes = _p99_notes(s.notifications)
        t.add(f"load step ({p.step_workers} closed-loop workers added)", 0.0, f"threshold {threshold * 1000:.1f} ms")
        t.add("P99 recording rule over threshold", rel(crossed, t0), "")
        t.add(f"alert firing in Prometheus (for: {p.alert_for})", rel(firing, t0), "")
        t.add(
            "notification at webhook",
            rel(got, t0),
            f"{notes[0]['labels']['alertname']} via {notes[0]['receiver']}" if notes else "none",
        )
    return Output(
        tables=[t],
        notes=[
            f"Baseline P99 {base * 1000:.1f} ms at the base rate; threshold = {p.threshold_factor} x baseline. The "
            "chain is recording rule (1 s evaluation) -> alert `for` -> Prometheus sends to Alertmanager -> "
            "group_wait (0 s critical, 1 s warning in the local drill config) -> webhook.",
            "Grafana-managed alerts are not used: Grafana cannot run here; the same rule would run in the cluster's "
            "Prometheus and route through the same Alertmanager tree.",
        ],
        substitute=PROMETHEUS_ALERT,
    )


def _p99_notes(path: Path) -> list[dict]:
    return notifications.alerts(path, "TritonP99LatencyCritical") + notifications.alerts(path, "TritonP99LatencyHigh")


DRILL = [  # (alertname, severity, job, instance, expected receiver, expected inhibited)
    ("DrillCritical", "critical", "drill", "node-a", "critical", False),
    ("DrillWarningAlone", "warning", "drill", "node-b", "warning", False),
    ("DrillWarningInhibited", "warning", "drill", "node-a", "-", True),
    ("DrillNoSeverity", "", "drill", "node-c", "warning", False),
]


def routes_drill(ctx: Context, p: RoutesDrillParams) -> Output:
    """Alerts of each severity posted to Alertmanager; which receiver got each, how fast (s), what was inhibited."""
    t = Table.of(
        "Alertmanager routing drill",
        [("alert", ""), ("severity", ""), ("expected receiver", ""), ("received by", ""), ("delivery", "s"),
         ("inhibited", "")],
        caption="Alerts posted straight to /api/v2/alerts of the generated routing tree (drill timings: "
        "group_wait 0 s critical, 1 s warning); the webhook records which URL (receiver) each arrived on.",
    )  # fmt: skip
    services = ["webhook", "alertmanager", "prometheus"]
    with observed_platform(ctx.platform, ctx.workdir / "stack", services=services) as s:
        now = datetime.now(UTC)
        alerts = [
            {"labels": {"alertname": n, "job": j, "instance": i, **({"severity": sev} if sev else {})},
             "annotations": {"summary": f"drill {n}"}, "startsAt": now.isoformat(),
             "endsAt": (now + timedelta(minutes=5)).isoformat()}
            for n, sev, j, i, *_ in DRILL
        ]  # fmt: skip
        t0 = time.time()
        req = urllib.request.Request(
            f"{s.alertmanager_url}/api/v2/alerts", data=json.dumps(alerts).encode(), method="POST",
            headers={"Content-Type": "application/json"},
        )  # fmt: skip
        urllib.request.urlopen(req, timeout=10).close()
        until(lambda: all(notifications.alerts(s.notifications, n) for n, *_, inh in DRILL if not inh), p.wait_s)
        time.sleep(p.settle_s)  # give an inhibited alert time to (wrongly) arrive
        with urllib.request.urlopen(f"{s.alertmanager_url}/api/v2/alerts", timeout=10) as r:
            state = {a["labels"]["alertname"]: a["status"] for a in json.loads(r.read())}
        for n, sev, _, _, expect, _ in DRILL:
            got = notifications.alerts(s.notifications, n)
            t.add(n, sev or "(none)", expect, ",".join(sorted({g["receiver"] for g in got})) or "-",
                  round(min(g["received_unix"] for g in got) - t0, 2) if got else "-",
                  "yes" if state.get(n, {}).get("inhibitedBy") else "no")  # fmt: skip
    return Output(
        tables=[t],
        notes=["DrillWarningInhibited shares job and instance with DrillCritical, so the inhibit rule "
               "(critical silences warning, equal: job, instance) suppresses it; DrillNoSeverity falls through "
               "to the root route's receiver (warning) instead of being dropped."],
    )  # fmt: skip
