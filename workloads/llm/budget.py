"""A runner's time budget and progress log, so a run that runs out of time keeps what it measured.

A GPU call gives every experiment a limited time. Instead of being killed with nothing written, a runner asks
`RunBudget.admit(row, estimate)` before each row (a repeat rate, a round of timings, a report window) and
`expired()` between the requests of a row; what it could not do is recorded with why, and `finish()` adds a
"not done" table to the result (or raises `Skip` when nothing at all was measured, so a partial run never replaces
a stored result with an empty one). Every step is logged with a UTC timestamp and the seconds since the start, so
the log of a killed run shows where the time went.

A stop request (`stop_on_signal`: SIGTERM from `timeout` in the GPU suite) ends the run at the next check as if the
budget had run out. Torch-free: the catalogue imports the runner modules that import this one.
"""

from __future__ import annotations

import itertools
import math
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from typing import Any

from ailab.contract import Context, Output, Skip, Table

STOP = threading.Event()  # set by the signal handler of `stop_on_signal`; every RunBudget sees it


def stop_on_signal(signum: int = signal.SIGTERM, log: Callable[[str], None] = print) -> None:
    """Turn `signum` into a stop request: budgeted runners stop at their next check and return what they have."""

    def _handler(sig: int, _frame: Any) -> None:
        STOP.set()
        log(f"{_utc()} signal {signal.Signals(sig).name}: stop requested, runners finish with what they measured")
        sys.stdout.flush()

    signal.signal(signum, _handler)


def _utc() -> str:
    return datetime.now(UTC).strftime("%H:%M:%SZ")


def coverage_order(values: Iterable[Any]) -> list[Any]:
    """The values in the order that covers their range soonest: first, last, then midpoints of the widest gaps.

    A run cut short by its budget then still has both ends of a sweep (0 % and 90 % repeats, say) rather than
    only its start.
    """
    vals = list(values)
    if len(vals) <= 2:
        return vals
    order, taken = [0, len(vals) - 1], {0, len(vals) - 1}
    while len(order) < len(vals):
        edges = sorted(taken)
        a, b = max(itertools.pairwise(edges), key=lambda ab: ab[1] - ab[0])
        mid = (a + b) // 2
        order.append(mid)
        taken.add(mid)
    return [vals[i] for i in order]


class RunBudget:
    """Time budget of one run (seconds from its start; None = none) with its progress log and its rows not done."""

    def __init__(self, ctx: Context, seconds: float | None, clock: Callable[[], float] | None = None) -> None:
        if seconds is not None and (isinstance(seconds, bool) or not isinstance(seconds, int | float) or seconds <= 0):
            raise ValueError(f"budget_s {seconds!r}: allowed a number of seconds > 0, or None for no budget")
        self.ctx, self.seconds = ctx, seconds
        self.clock = clock or time.monotonic
        self.t0 = self.clock()
        self.not_done: list[tuple[str, str]] = []
        self.durations: dict[str, float] = {}  # row -> seconds it took
        self.measured = 0  # rows (or parts of rows) that produced numbers
        self._started: dict[str, float] = {}

    # ---- time

    def elapsed(self) -> float:
        return self.clock() - self.t0

    def left(self) -> float:
        return math.inf if self.seconds is None else self.seconds - self.elapsed()

    def expired(self) -> bool:
        """True once the budget is spent or a stop was requested."""
        return STOP.is_set() or self.left() <= 0

    def why(self) -> str:
        if STOP.is_set():
            return f"stop requested (signal) at {self.elapsed():.0f} s"
        return f"time budget ({self.seconds:g} s) spent at {self.elapsed():.0f} s"

    # ---- progress

    def log(self, msg: str) -> None:
        """One progress line: UTC time, experiment, seconds since it started, message; flushed at once."""
        self.ctx.log(f"{_utc()} {self.ctx.experiment_id} +{self.elapsed():.1f}s: {msg}")
        sys.stdout.flush()

    def require_time(self, what: str) -> None:
        """Skip the whole run when the budget is already spent before `what` (nothing measured yet)."""
        if self.expired():
            raise Skip(f"not started ({what}): {self.why()}")

    # ---- rows

    def estimate(self, like: str = "") -> float | None:
        """What the next row is expected to take: the longest row done so far whose name starts with `like`
        (None before any)."""
        took = [s for row, s in self.durations.items() if row.startswith(like)]
        return max(took) if took else None

    def admit(self, row: str, estimate_s: float | None = None) -> bool:
        """True when `row` may start now; otherwise it is recorded as not done, with why, and logged."""
        if self.expired():
            return self.skip(row, self.why())
        if estimate_s is not None and estimate_s > self.left():
            return self.skip(
                row,
                f"would not fit: expected {estimate_s:.0f} s (from the rows done), {self.left():.0f} s of the "
                f"{self.seconds:g} s budget left at {self.elapsed():.0f} s",
            )
        self._started[row] = self.clock()
        self.log(f"start {row}" + (f" (expected {estimate_s:.0f} s, {self.left():.0f} s left)" if estimate_s else ""))
        return True

    def done(self, row: str, what: str = "", measured: bool = True) -> None:
        """Row `row` (admitted before) finished; `measured` False for an untimed one (a warm-up)."""
        took = self.clock() - self._started.pop(row, self.clock())
        self.durations[row] = took
        self.measured += measured
        self.log(f"done {row} in {took:.1f} s" + (f": {what}" if what else ""))

    def partial(self, row: str, what: str, measured: bool = True) -> None:
        """Row `row` was cut short (`what` says how much of it was measured); recorded as not done, with why."""
        took = self.clock() - self._started.pop(row, self.clock())
        self.measured += measured
        self.not_done.append((row, f"{what}; {self.why()}"))
        self.log(f"cut short {row} after {took:.1f} s: {what}")

    def skip(self, row: str, why: str) -> bool:
        """Record `row` as not done because of `why`; returns False (for `if not budget.admit(...)`)."""
        self.not_done.append((row, why))
        self.log(f"not done {row}: {why}")
        return False

    # ---- result

    def table(self) -> Table | None:
        if not self.not_done:
            return None
        t = Table.of(
            "rows not done (time budget)",
            [("row", ""), ("why", "")],
            caption=f"This run had a budget of {self.seconds:g} s"
            if self.seconds is not None
            else "This run was stopped before it ended.",
        )
        for row, why in self.not_done:
            t.add(row, why)
        return t

    def finish(self, out: Output) -> Output:
        """`out` with the rows-not-done table and a note; Skip when nothing was measured (nothing to store)."""
        if not self.measured:
            raise Skip(
                "nothing measured within the time budget: "
                + "; ".join(f"{row}: {why}" for row, why in self.not_done[:6])
            )
        if (t := self.table()) is not None:
            out.tables.append(t)
            out.notes.append(
                f"Partial run: {len(self.not_done)} row(s) not done for lack of time (table 'rows not done'); "
                "what is shown was measured in full unless its caption says it was cut short."
            )
        self.log(f"finished ({self.measured} row(s) measured, {len(self.not_done)} not done)")
        return out
