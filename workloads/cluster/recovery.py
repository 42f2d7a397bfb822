"""Recovery after a disruption (a deleted pod, a drained node, a failed version): how long until the workload is
whole again, read from pod objects and from ready counts sampled by the runner. Pure."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from workloads.cluster.objects import pod_ready, ready_since, ts


@dataclass(frozen=True)
class Replacement:
    deleted: str
    deleted_at: float
    replacement: str | None  # the pod that took its place (same name for a StatefulSet)
    created_after_s: float | None  # from the deletion to the replacement's creation
    ready_after_s: float | None  # from the deletion to the replacement being Ready


def replacement(pods: list[dict[str, Any]], deleted: str, deleted_at: float) -> Replacement:
    """The first pod created after the deletion (by creationTimestamp) and when it became Ready."""
    newer = [p for p in pods if (ts(p["metadata"].get("creationTimestamp")) or 0) >= deleted_at]
    if not newer:
        return Replacement(deleted, deleted_at, None, None, None)
    # a StatefulSet recreates the same name; a ReplicaSet makes a new one: prefer the same name when present
    newer.sort(key=lambda p: (p["metadata"]["name"] != deleted, ts(p["metadata"]["creationTimestamp"])))
    p = newer[0]
    created = ts(p["metadata"]["creationTimestamp"])
    ready = ready_since(p) if pod_ready(p) else None
    return Replacement(
        deleted,
        deleted_at,
        p["metadata"]["name"],
        created - deleted_at if created is not None else None,
        ready - deleted_at if ready is not None else None,
    )


def back_to_full(samples: list[tuple[float, int]], since: float, desired: int) -> float | None:
    """Seconds from `since` until the sampled ready count is back to `desired` after its last dip below it;
    0.0 when no sample dipped, None when it is still below at the last sample."""
    after = sorted((t, n) for t, n in samples if t >= since)
    below = [i for i, (_, n) in enumerate(after) if n < desired]
    if not below:
        return 0.0
    nxt = below[-1] + 1
    return after[nxt][0] - since if nxt < len(after) else None


def lowest(samples: list[tuple[float, int]], since: float) -> int | None:
    """The lowest ready count sampled at or after `since` (how deep the dip went)."""
    vals = [n for t, n in samples if t >= since]
    return min(vals) if vals else None
