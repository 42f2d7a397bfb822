"""Alertmanager configuration: a routing tree (critical vs warning), grouping, inhibition, webhook receivers."""

from __future__ import annotations

from typing import Any

# The cluster's webhook receiver (a Service in the monitoring namespace); `lab up` fills in 127.0.0.1 instead.
CLUSTER_WEBHOOK = "http://alert-webhook.monitoring.svc:9095"
RECEIVERS = ("critical", "warning")


def config(webhook_base: str = CLUSTER_WEBHOOK, fast: bool = False) -> dict[str, Any]:
    """alertmanager.yml as a dict; `fast` shortens group_wait/interval so a local drill takes seconds, not minutes."""
    wait, interval, repeat = ("1s", "5s", "1h") if fast else ("30s", "5m", "4h")
    return {
        "global": {"resolve_timeout": "5m"},
        "route": {
            # anything unmatched goes to the warning channel rather than being dropped
            "receiver": "warning",
            "group_by": ["alertname", "job", "model"],
            "group_wait": wait,
            "group_interval": interval,
            "repeat_interval": repeat,
            "routes": [
                {"receiver": "critical", "matchers": ['severity="critical"'], "group_wait": "0s" if fast else "10s",
                 "repeat_interval": "1h" if fast else "2h"},
                {"receiver": "warning", "matchers": ['severity="warning"']},
            ],
        },
        "inhibit_rules": [
            # a critical alert silences the warnings it implies (P99 > 2x SLO hides P99 > SLO, target down
            # hides the symptoms of that target)
            {
                "source_matchers": ['severity="critical"'],
                "target_matchers": ['severity="warning"'],
                "equal": ["job", "instance"],
            }
        ],
        "receivers": [
            {"name": name, "webhook_configs": [{"url": f"{webhook_base}/{name}", "send_resolved": True}]}
            for name in RECEIVERS
        ],
    }  # fmt: skip


def route_receivers(route: dict[str, Any]) -> list[str]:
    """Every receiver a routing tree names, depth first."""
    found = [route["receiver"]] if "receiver" in route else []
    for sub in route.get("routes", []) or []:
        found += route_receivers(sub)
    return found


def undefined_receivers(cfg: dict[str, Any]) -> list[str]:
    """Receivers used by routes but not defined under `receivers:`."""
    defined = {r.get("name") for r in cfg.get("receivers", []) or []}
    return [r for r in route_receivers(cfg.get("route", {})) if r not in defined]
