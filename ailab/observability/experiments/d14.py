"""Day 14 failure drill on the local platform: SIGKILL Prometheus, then Alertmanager, while the load and an alert
run; time to recovery and what was lost (the scrape gap; notifications and pending alerts)."""

from __future__ import annotations

import itertools
import json
import os
import signal
import time
import urllib.request

from ailab.contract import Context, Output, Table
from ailab.local import process
from ailab.observability import webhook
from ailab.observability.experiments.common import metered_traffic
from ailab.observability.stack import Stack, observed_platform


def _kill(s: Stack, name: str) -> float:
    rec = s.platform.record(name)
    os.kill(rec.pid, signal.SIGKILL)
    t = time.time()
    while process.alive(rec.pid, rec.create_time):
        time.sleep(0.05)
    # the kernel may hold the listening port a moment after the process is gone; `lab up` refuses a busy port
    deadline = time.monotonic() + 30
    while any(process.port_in_use(p) for p in rec.ports.values()) and time.monotonic() < deadline:
        time.sleep(0.05)
    return t


def _am_alerts(s: Stack) -> list[dict]:
    with urllib.request.urlopen(f"{s.alertmanager_url}/api/v2/alerts", timeout=5) as r:
        return json.loads(r.read())


def _until(pred: object, timeout_s: float) -> float | None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            if pred():  # type: ignore[operator]
                return time.time()
        except OSError:
            pass  # still down
        time.sleep(0.1)
    return None


def _largest_gap(s: Stack, selector: str, window_s: float) -> float:
    """Largest distance between consecutive raw samples of `selector` in the last window_s, s."""
    res = s.prom.query(f"{selector}[{int(window_s) + 1}s]")
    ts = [float(t) for t, _ in res[0]["values"]] if res else []
    return max((b - a for a, b in itertools.pairwise(ts)), default=0.0)


def _largest_gap(s: Stack, selector: str, window_s: float) -> float:
    """Largest distance between consecutive raw samples of `selector` in the last window_s, s."""
    res = s.prom.query(f"{selector}[{int(window_s) + 1}s]")
    ts = [float(t) for t, _ in res[0]["values"]] if res else []
    return max((b - a for a, b in itertools.pairwise(ts)), default=0.0)


def kill_drill(ctx: Context) -> Output:
    """d14.e3: SIGKILL Prometheus and Alertmanager mid-run; restart with `lab up`'s code; MTTR and losses."""
    before_s = float(ctx.param("before_s", 20))
    t = Table.of(
        "failure drill",
        [("component", ""), ("kill -> process ready", "s"), ("kill -> working again", "s"),
         ("scrape gap", "s"), ("lost", "")],
        caption="SIGKILL, then Platform.up() restarts what is not running (same ports, same data directory); "
        "scrape interval 1 s; the P99 alert fires throughout (threshold 1 ms).",
    )  # fmt: skip
    with (
        observed_platform(ctx.workdir / "stack", "1s", p99_threshold_s=0.001, alert_for="0s") as s,
        metered_traffic(s, rps=float(ctx.param("rps", 20)), workers=2),
    ):
        s.prom.wait_for('ALERTS{alertstate="firing", alertname="TritonP99LatencyCritical"}', 60)
        time.sleep(before_s)
        first = time.time() - before_s  # a moment well before the kill

        # Prometheus: the WAL survives SIGKILL; scrapes during the outage are simply never taken
        k = _kill(s, "prometheus")
        s.platform.up()
        ready = time.time()
        fresh = _until(lambda: (s.prom.value('timestamp(up{job="triton"})') or 0) > k, 60)
        time.sleep(3)
        gap = _largest_gap(s, 'up{job="triton"}', time.time() - k + 10)
        kept = s.prom.query('count_over_time(up{job="triton"}[5s])', at=first + 5)
        t.add("prometheus", round(ready - k, 2), round(fresh - k, 2) if fresh else "not reached", round(gap, 1),
              f"scrapes during the outage; samples before the kill kept: {'yes' if kept else 'no'}")  # fmt: skip

        # Alertmanager: notification log and silences are on disk; the alerts it held come back with the
        # next Prometheus resend (every evaluation while firing, at most 1 per resend delay)
        n_before = len(webhook.read(s.notifications))
        k = _kill(s, "alertmanager")
        s.platform.up()
        ready = time.time()
        back = _until(lambda: any(a["labels"]["alertname"] == "TritonP99LatencyCritical" for a in _am_alerts(s)),
                      90)  # fmt: skip
        renotified = len(webhook.read(s.notifications)) > n_before
        t.add("alertmanager", round(ready - k, 2), round(back - k, 2) if back else "not reached", "-",
              "firing alert re-sent by Prometheus; "
              + ("a duplicate notification was sent (the notification log reaches disk only every 15 min)"
                 if renotified else "no duplicate notification (notification log kept on disk)"))  # fmt: skip
    return Output(
        tables=[t],
        notes=[
            "'working again' = Prometheus has a triton sample taken after the kill / Alertmanager holds the firing "
            "alert again. The lost data are the scrapes not taken while Prometheus was down: a gap in every "
            "series, which rate() over the gap smooths over and increase() underestimates.",
            "Grafana is not part of the local drill (not installable here); in the cluster it is stateless "
            "against Prometheus and recovers with its pod.",
        ],
    )
