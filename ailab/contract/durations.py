"""Prometheus' duration notation ("500ms", "30s", "1h30m", "15d"), read in one place for both planes: the local
platform's option checks (ailab/local/services/prometheus.py) and the runners that scrape (workloads/multimodel);
and the scrape intervals the lab's generated Prometheus configs allow (ailab/observability/scrape.py)."""

from __future__ import annotations

import re

UNITS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400, "y": 365 * 86400}
DURATION = re.compile(r"^(?:\d+(?:ms|[smhdwy]))+$")
ALLOWED = "digits with ms, s, m, h, d, w or y, e.g. 500ms, 30s, 1h30m"
# 500ms: the quick runs' Prometheus curves (two scrapes in a 1 s step); 1s: the experiments' default; 5s-1m: nodes
SCRAPE_INTERVALS = ("500ms", "1s", "5s", "15s", "30s", "1m")


def seconds(text: str) -> float:
    """Seconds of a Prometheus duration; ValueError naming the text and what is allowed otherwise."""
    if not DURATION.match(text):
        raise ValueError(f"{text!r}: not a duration (allowed: {ALLOWED})")
    return float(sum(int(n) * UNITS[u] for n, u in re.findall(r"(\d+)(ms|[smhdwy])", text)))
