"""Latency statistics shared by every load driver of the lab (no client libraries: cheap to import)."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np


def percentile(sorted_ms: np.ndarray | Sequence[float], p: float) -> float:
    """Nearest-rank percentile of already sorted samples (exact: an observed value, no interpolation, as
    perf_analyzer reports them); NaN for no samples. Units of the input."""
    if len(sorted_ms) == 0:
        return math.nan
    rank = math.ceil(round(p * len(sorted_ms) / 100.0, 9))  # round: 99.9 * 1000 / 100 is 999.0000000000001
    return float(sorted_ms[max(0, rank - 1)])
