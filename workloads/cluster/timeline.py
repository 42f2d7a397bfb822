"""Per-request timelines of the load generator, cut into windows: latency percentiles, error counts, gaps.

A timeline row is (send time from the window start s, latency ms, error kind or "") as
`workloads.serving.loadgen` records it with `timeline=True`. Pure functions; nearest-rank percentiles like the
rest of the lab.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

Row = tuple[float, float, str]


def nearest_rank(values: list[float], pct: float) -> float:
    """The nearest-rank percentile (an observed value); nan for no values."""
    if not values:
        return math.nan
    s = sorted(values)
    return s[max(0, math.ceil(pct / 100 * len(s)) - 1)]


@dataclass(frozen=True)
class Window:
    start_s: float
    requests: int
    errors: int
    p50_ms: float
    p99_ms: float
    ok_rps: float


def windows(rows: list[Row], width_s: float, until_s: float | None = None) -> list[Window]:
    """Consecutive windows of `width_s` from 0: requests, errors, p50/p99 of the successful ones, ok req/s."""
    if width_s <= 0:
        raise ValueError(f"width_s {width_s}: must be > 0")
    end = until_s if until_s is not None else max((r[0] for r in rows), default=0.0)
    out = []
    for i in range(int(end // width_s) + 1):
        lo, hi = i * width_s, (i + 1) * width_s
        part = [r for r in rows if lo <= r[0] < hi]
        ok = [r[1] for r in part if not r[2]]
        out.append(
            Window(lo, len(part), len(part) - len(ok), nearest_rank(ok, 50), nearest_rank(ok, 99), len(ok) / width_s)
        )
    return out


def error_span(rows: list[Row], after_s: float = 0.0) -> tuple[float, float] | None:
    """(first, last) send time of a failed request at or after `after_s`; None when none failed."""
    errs = [r[0] for r in rows if r[2] and r[0] >= after_s]
    return (min(errs), max(errs)) if errs else None


def drift(wins: list[Window], field: str = "p99_ms") -> float:
    """Last quarter's median of `field` over the first quarter's (1.0 = no drift); nan when too short."""
    vals = [getattr(w, field) for w in wins if w.requests and not math.isnan(getattr(w, field))]
    q = len(vals) // 4
    if q == 0:
        return math.nan
    first, last = sorted(vals[:q])[q // 2], sorted(vals[-q:])[q // 2]
    return last / first if first > 0 else math.nan
