"""StatefulSet ordering and identity, read from pods and events: creation order, update order, stable names. Pure."""

from __future__ import annotations

import itertools
import re
from typing import Any

from workloads.cluster.objects import Event, ts

_DELETE = re.compile(r"delete Pod (\S+) in StatefulSet (\S+) successful")


def ordinal(name: str) -> int:
    """The ordinal of a StatefulSet pod name (`mysql-2` -> 2); ValueError for a name without one."""
    head, _, tail = name.rpartition("-")
    if not head or not tail.isdigit():
        raise ValueError(f"pod name {name!r} has no StatefulSet ordinal")
    return int(tail)


def creation_order(pods: list[dict[str, Any]]) -> list[str]:
    """Pod names by creationTimestamp (ties by name)."""
    return [
        p["metadata"]["name"]
        for p in sorted(pods, key=lambda p: (ts(p["metadata"]["creationTimestamp"]), p["metadata"]["name"]))
    ]


def deletion_order(events: list[Event], statefulset: str) -> list[str]:
    """Pods the StatefulSet controller deleted (a rolling update deletes then recreates), oldest first."""
    out = []
    for e in events:
        m = _DELETE.search(e.message) if e.reason == "SuccessfulDelete" else None
        if m and m.group(2) == statefulset:
            out.append(m.group(1))
    return out


def monotonic(names: list[str], descending: bool = False) -> bool:
    """The ordinals of `names` strictly increase (or decrease)."""
    ords = [ordinal(n) for n in names]
    pairs = itertools.pairwise(ords)
    return all(b < a for a, b in pairs) if descending else all(b > a for a, b in pairs)
