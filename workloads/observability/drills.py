"""Small helpers of the failure and alerting drills: poll until something happens, time relative to a start."""

from __future__ import annotations

import time
from collections.abc import Callable


def until(pred: Callable[[], bool], timeout_s: float, interval_s: float = 0.2, down_ok: bool = False) -> float | None:
    """Unix time at which `pred()` first held, or None after `timeout_s`; `down_ok`: an OSError (a service still
    restarting) counts as not yet."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            if pred():
                return time.time()
        except OSError:
            if not down_ok:
                raise
        time.sleep(interval_s)
    return None


def rel(ts: float | None, t0: float) -> float | str:
    """Seconds from t0 to ts, or 'not reached'."""
    return round(ts - t0, 2) if ts is not None else "not reached"
