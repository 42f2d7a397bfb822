"""How long until what the cluster reports matches what was asked: Argo CD syncing a new revision, the operator
reconciling a custom resource, a controller repairing a hand-made change. Pure, over sampled observations."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

Sample = tuple[float, Any]


def first_true(samples: list[Sample], since: float, holds: Callable[[Any], bool]) -> float | None:
    """Seconds from `since` to the first sample at or after it for which `holds` is true (and stays true)."""
    after = sorted((s for s in samples if s[0] >= since), key=lambda s: s[0])
    for i, (t, v) in enumerate(after):
        if holds(v) and all(holds(w) for _, w in after[i:]):
            return t - since
    return None


def argo_synced(status: dict[str, Any], revision: str | None = None) -> bool:
    """An Argo CD Application status that is Synced and Healthy (at `revision`, when given)."""
    sync = status.get("sync") or {}
    ok = sync.get("status") == "Synced" and (status.get("health") or {}).get("status") == "Healthy"
    return ok and (revision is None or sync.get("revision") == revision)


@dataclass(frozen=True)
class Throughput:
    objects: int
    done: int
    p50_s: float
    p99_s: float
    per_s: float  # objects done per second, from the first creation to the last completion


def throughput(created: dict[str, float], done: dict[str, float]) -> Throughput:
    """From each object's creation time and the time it was seen done: latency percentiles and the rate."""
    lat = sorted(done[k] - created[k] for k in created if k in done)
    if not lat:
        return Throughput(len(created), 0, math.nan, math.nan, 0.0)

    def rank(p: float) -> float:
        return lat[max(0, math.ceil(p / 100 * len(lat)) - 1)]

    span = max(done[k] for k in created if k in done) - min(created.values())
    return Throughput(len(created), len(lat), rank(50), rank(99), len(lat) / span if span > 0 else math.inf)
