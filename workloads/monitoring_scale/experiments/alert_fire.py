"""Alert rules triggered for real: a condition raised on a scraped gauge goes through Prometheus (rule evaluation,
`for:`), Alertmanager (routing, group_wait) to the lab's webhook receiver; each link timed from the moment the
condition was raised, and back when it clears (d68.e3)."""

from __future__ import annotations

import json
import statistics
import time
import urllib.request

from prometheus_client import CollectorRegistry, Gauge, start_http_server
from pydantic import Field

from ailab.contract import Context, Output, Params, Table
from ailab.contract.ports import free_port
from workloads.monitoring_scale import stores
from workloads.observability import notifications
from workloads.observability.drills import rel, until
from workloads.observability.stack import observed_platform

# (alert, severity, for) — the two routes of the generated Alertmanager tree (local drill timings)
ALERTS = [("LabDrillCritical", "critical", "0s"), ("LabDrillWarning", "warning", "10s")]


def drill_rules() -> dict:
    rules = [
        {
            "alert": name,
            "expr": f'max by (job) (lab_drill_condition{{alert="{name}"}}) > 0',
            "for": for_,
            "labels": {"severity": sev},
            "annotations": {"summary": f"drill condition {name} raised"},
        }
        for name, sev, for_ in ALERTS
    ]
    return {"groups": [{"name": "drill", "rules": rules}]}


class AlertFireParams(Params):
    trials: int = Field(default=5, ge=1, description="raise/clear cycles per alert")
    timeout_s: float = Field(default=90, gt=0, description="longest wait for any link, s")
    cooldown_s: float = Field(default=0, ge=0, description="wait after a resolution before the next trial, s")


def alert_fire(ctx: Context, p: AlertFireParams) -> Output:
    """Per alert and trial: seconds from raising the condition to scrape, firing, Alertmanager, webhook, resolved."""
    host = stores.host_note()
    t = Table.of(
        "condition to notification",
        [("alert", ""), ("severity", ""), ("for", ""), ("trial", ""), ("scraped", "s"), ("firing", "s"),
         ("in Alertmanager", "s"), ("notified", "s"), ("receiver", ""), ("resolved notified", "s")],
        caption="Times from setting the gauge (the condition) on a target Prometheus scrapes every 1 s (rules "
        "evaluated every 1 s). 'resolved notified' counts from clearing it. Alertmanager's local drill tree: "
        "critical group_wait 0 s, warning group_wait 1 s, group_interval 5 s, send_resolved on.",
    )  # fmt: skip
    summary = Table.of(
        "condition to notification, first and later trials",
        [("alert", ""), ("for", ""), ("first trial notified", "s"), ("later trials notified (median)", "s"),
         ("resolved (median)", "s")],
        caption="The first trial of each alert opens a new Alertmanager group; later trials raise the condition "
        f"{p.cooldown_s:g} s after the previous resolution reached the webhook.",
    )  # fmt: skip
    reg = CollectorRegistry(auto_describe=False)
    g = Gauge("lab_drill_condition", "Drill condition: 1 raised, 0 clear", ["alert"], registry=reg)
    for name, _, _ in ALERTS:
        g.labels(name).set(0)
    port = free_port()
    httpd, _ = start_http_server(port, addr="127.0.0.1", registry=reg)
    services = ["webhook", "alertmanager", "prometheus"]
    extra = {"prometheus.extra_rules": {"drill.yaml": drill_rules()}}
    target = None
    try:
        with observed_platform(ctx.platform, ctx.workdir / "stack", "1s", services=services,
                               extra_options=extra) as s:  # fmt: skip
            target = stores.announce(s.targets_dir, port, {"job": "drill"})
            s.prom.wait_for('up{job="drill"}', 60, lambda v: v == 1)
            for name, sev, for_ in ALERTS:
                notified, resolved = [], []
                for trial in range(1, p.trials + 1):
                    t0 = time.time()
                    g.labels(name).set(1)
                    q = f'lab_drill_condition{{alert="{name}"}} == 1'
                    scraped = until(lambda q=q: bool(s.prom.query(q)), p.timeout_s)
                    a = f'ALERTS{{alertname="{name}", alertstate="firing"}}'
                    firing = until(lambda a=a: bool(s.prom.query(a)), p.timeout_s)
                    in_am = until(lambda n=name: _in_alertmanager(s.alertmanager_url, n), p.timeout_s)
                    got = until(lambda n=name, t0=t0: bool(_since(s.notifications, n, "firing", t0)), p.timeout_s)
                    notes = _since(s.notifications, name, "firing", t0)
                    t1 = time.time()
                    g.labels(name).set(0)
                    res = until(lambda n=name, t1=t1: bool(_since(s.notifications, n, "resolved", t1)), p.timeout_s)
                    t.add(name, sev, for_, trial, rel(scraped, t0), rel(firing, t0), rel(in_am, t0), rel(got, t0),
                          notes[0]["receiver"] if notes else "-", rel(res, t1))  # fmt: skip
                    if got is not None:
                        notified.append(got - t0)
                    if res is not None:
                        resolved.append(res - t1)
                    # let the group's resolved state settle so the next trial starts a fresh group
                    until(lambda n=name: not _in_alertmanager(s.alertmanager_url, n), p.timeout_s)
                    time.sleep(p.cooldown_s)
                first = round(notified[0], 2) if notified else "not reached"
                later = round(statistics.median(notified[1:]), 2) if len(notified) > 1 else "-"
                summary.add(name, for_, first, later,
                            round(statistics.median(resolved), 2) if resolved else "not reached")  # fmt: skip
    finally:
        if target is not None:
            target.unlink(missing_ok=True)
        httpd.shutdown()
    return Output(
        tables=[summary, t],
        notes=[
            host,
            "Chain: scrape (1 s) -> rule evaluation (1 s) -> pending for `for:` -> firing, sent to Alertmanager -> "
            "route's group_wait -> webhook. Clearing goes through one more evaluation, Prometheus' resolved send and "
            "Alertmanager's group_interval before the resolved notification.",
            "Compare the first trial with the later ones: a condition raised again soon after it resolved can wait "
            "for the group's group_interval instead of group_wait when Alertmanager still holds that group; "
            "`for:` adds its full duration on top.",
        ],
    )


def _in_alertmanager(url: str, name: str) -> bool:
    with urllib.request.urlopen(f"{url}/api/v2/alerts?filter=alertname%3D%22{name}%22", timeout=10) as r:
        return any(a["status"]["state"] == "active" for a in json.loads(r.read()))


def _since(path, name: str, status: str, t0: float) -> list[dict]:
    return [a for a in notifications.alerts(path, name, status) if a["received_unix"] >= t0]
