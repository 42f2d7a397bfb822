"""Scale-out and scale-in read from what the cluster records: HPA/KEDA rescale events, Deployment events, and
replica counts sampled by the runner. Pure: lists of (time, replicas) in, numbers out.

Times are epoch seconds; a "step" list is the replica count after each change, oldest first.
"""

from __future__ import annotations

import itertools
import re
from dataclasses import dataclass

from workloads.cluster.objects import Event

# HPA (and KEDA's HPA): "New size: 4; reason: cpu resource utilization (percentage of request) above target"
_HPA = re.compile(r"New size: (\d+); reason: (.*)")
# Deployment controller: "Scaled up replica set triton-stable-6d4cf56db6 to 3 from 1" (1.26+) or "... to 3"
_RS = re.compile(r"Scaled (up|down) replica set (\S+) (?:to|from \d+ to) (\d+)")


@dataclass(frozen=True)
class Rescale:
    t: float
    replicas: int
    reason: str  # the HPA's stated reason, or "replica set <name>"


def rescales(events: list[Event], hpa: str | None = None) -> list[Rescale]:
    """Rescale decisions of an HPA (SuccessfulRescale events; all HPAs when `hpa` is None), oldest first."""
    out = []
    for e in events:
        if e.reason == "SuccessfulRescale" and e.kind == "HorizontalPodAutoscaler" and hpa in (None, e.name):
            m = _HPA.search(e.message)
            if m:
                out.append(Rescale(e.t, int(m.group(1)), m.group(2).strip()))
    return out


def replica_set_scalings(events: list[Event], deployment: str) -> list[Rescale]:
    """ScalingReplicaSet events of one Deployment: the replica count its newest replica set was scaled to."""
    out = []
    for e in events:
        if e.reason == "ScalingReplicaSet" and e.kind == "Deployment" and e.name == deployment:
            m = _RS.search(e.message)
            if m:
                out.append(Rescale(e.t, int(m.group(3)), f"replica set {m.group(2)}"))
    return out


def steps(samples: list[tuple[float, int]]) -> list[tuple[float, int]]:
    """Change points of sampled replica counts: the first sample and every sample that differs from the last."""
    out: list[tuple[float, int]] = []
    for t, n in sorted(samples):
        if not out or n != out[-1][1]:
            out.append((t, n))
    return out


def time_to_reach(points: list[tuple[float, int]], since: float, replicas: int) -> float | None:
    """Seconds from `since` until the count first reaches `replicas` or more; None if it never does."""
    return next((t - since for t, n in sorted(points) if t >= since and n >= replicas), None)


def time_to_settle(points: list[tuple[float, int]], since: float, replicas: int) -> float | None:
    """Seconds from `since` until the count falls to `replicas` or fewer and stays there; None if it never does."""
    after = [(t, n) for t, n in sorted(points) if t >= since]
    for i, (t, n) in enumerate(after):
        if n <= replicas and all(m <= replicas for _, m in after[i:]):
            return t - since
    return None


def flaps(points: list[tuple[float, int]]) -> int:
    """Direction reversals of the replica count (up then down, or down then up): 0 for a clean ramp."""
    dirs = [1 if b > a else -1 for (_, a), (_, b) in itertools.pairwise(points) if b != a]
    return sum(1 for a, b in itertools.pairwise(dirs) if a != b)


@dataclass(frozen=True)
class ScaleSummary:
    start_replicas: int
    peak_replicas: int
    end_replicas: int
    changes: int  # how many times the count changed
    flaps: int
    first_scale_s: float | None  # from the load start to the first increase
    peak_reached_s: float | None  # from the load start to the peak
    overshoot: int  # peak minus the replicas the load needed (0 when not given or not exceeded)


def summarize(points: list[tuple[float, int]], load_start: float, needed: int | None = None) -> ScaleSummary:
    """One line of a scale-out: start/peak/end replicas, time to first scale and to the peak, flaps, overshoot."""
    pts = steps(points)
    if not pts:
        raise ValueError("no replica samples: nothing to summarise")
    start = next((n for t, n in reversed(pts) if t <= load_start), pts[0][1])
    peak = max(n for _, n in pts)
    return ScaleSummary(
        start,
        peak,
        pts[-1][1],
        len(pts) - 1,
        flaps(pts),
        time_to_reach(pts, load_start, start + 1),
        time_to_reach(pts, load_start, peak) if peak > start else None,
        max(0, peak - needed) if needed is not None else 0,
    )
