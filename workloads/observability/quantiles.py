"""Quantiles and variation of raw samples, and Prometheus' histogram_quantile replayed on them."""

from __future__ import annotations

import statistics


def cv_percent(values: list[float]) -> float:
    """Coefficient of variation (stdev / mean), %; 0 for fewer than two values."""
    if len(values) < 2 or not statistics.fmean(values):
        return 0.0
    return 100.0 * statistics.stdev(values) / statistics.fmean(values)


def exact_quantile(samples: list[float], q: float) -> float:
    """Nearest-rank quantile of raw samples."""
    xs = sorted(samples)
    return xs[min(len(xs) - 1, max(0, round(q * len(xs) + 0.5) - 1))] if xs else float("nan")


def histogram_quantile(q: float, bounds: tuple[float, ...], samples: list[float]) -> float:
    """Prometheus' histogram_quantile (linear interpolation inside the bucket) over raw samples."""
    counts = [sum(1 for x in samples if x <= b) for b in bounds] + [len(samples)]
    total = counts[-1]
    if not total:
        return float("nan")
    rank = q * total
    for i, c in enumerate(counts):
        if c >= rank:
            if i == len(bounds):
                return bounds[-1]  # in +Inf: Prometheus returns the highest finite bound
            lo = bounds[i - 1] if i else 0.0
            prev = counts[i - 1] if i else 0
            return lo + (bounds[i] - lo) * ((rank - prev) / (c - prev) if c > prev else 0)
    return bounds[-1]
