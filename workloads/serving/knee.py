"""The open-loop QPS sweep's plan and its knee (d07.e1), as pure logic: which target to measure next, when a step
breaches, and what the sweep found. No server or client here, so the decision is unit-tested on synthetic steps.

A step breaches when its judged latency percentile (`latency`: p50, p95 or p99) exceeds the latency limit
(`knee_factor` x the first step's, or an absolute `limit_ms_abs` when lower) or when the throughput stops following the
target (served, or even sent, below the
target by more than Poisson arrivals explain). The sweep runs the listed targets, then keeps growing the target
by `growth` (bounded by `max_qps` and `max_steps`) until a breach; with `confirm`, a breaching step is measured
once more and only a repeated breach ends the sweep (one noisy window on a shared host does not). The knee is the
highest target met before the confirmed breach; when the bound is reached without one there is no knee.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field


def shortfall_tolerance(qps: float, window_s: float) -> float:
    """Relative shortfall below target that Poisson arrivals alone explain: max(5 %, 3 standard deviations)."""
    n = max(qps * window_s, 1.0)
    return max(0.05, 3.0 / math.sqrt(n))


@dataclass(frozen=True)
class Step:
    """One measured sweep step (rates in req/s, latency in ms, window in s)."""

    target: float
    achieved: float  # requests sent / window
    throughput: float  # successful requests / window
    latency_ms: float  # the judged percentile (Sweep.latency)
    window_s: float
    verdict: str = ""  # the load generator's word on who limited the step


def breach(step: Step, limit_ms: float, latency: str = "p50") -> str | None:
    """Why `step` breaches (latency over `limit_ms`, or throughput not following its target), or None."""
    tol = shortfall_tolerance(step.target, step.window_s)
    floor = (1 - tol) * step.target
    if step.achieved < floor:
        return (
            f"the generator sent only {step.achieved:.0f} of {step.target:g} req/s "
            f"(more than {100 * tol:.0f} % short): {step.verdict or 'no verdict'}"
        )
    if step.throughput < floor:
        return f"served {step.throughput:.0f} of {step.target:g} req/s (more than {100 * tol:.0f} % short)"
    if not step.latency_ms <= limit_ms:  # NaN (nothing served) breaches too
        return f"{latency} {step.latency_ms:.2f} ms > limit {limit_ms:.2f} ms"
    return None


@dataclass
class Sweep:
    """Plans the sweep step by step: `next_target()`, measure it, `add(step)`, until `next_target()` is None."""

    listed: Sequence[float]
    knee_factor: float = 2.0
    limit_ms_abs: float | None = None  # an absolute limit on the judged percentile, ms
    latency: str = "p50"  # which percentile the limit holds: p50 | p95 | p99
    growth: float = 1.25
    max_qps: float = 20_000.0
    max_steps: int = 30
    confirm: bool = True
    steps: list[Step] = field(default_factory=list)

    def __post_init__(self) -> None:
        if not self.listed or any(b <= a for a, b in zip(self.listed, self.listed[1:], strict=False)):
            raise ValueError(f"qps {list(self.listed)}: allowed a non-empty, strictly increasing list")
        if self.growth <= 1.0:
            raise ValueError(f"growth {self.growth}: allowed > 1")

    @property
    def limit_ms(self) -> float:
        """The latency limit every step is held to: knee_factor x the first step's (or the absolute limit if lower)."""
        rel = self.knee_factor * self.steps[0].latency_ms if self.steps else math.inf
        return min(rel, self.limit_ms_abs) if self.limit_ms_abs is not None else rel

    def _targets(self) -> list[float]:
        """Distinct targets measured so far, in order."""
        out: list[float] = []
        for s in self.steps:
            if not out or out[-1] != s.target:
                out.append(s.target)
        return out

    def next_target(self) -> float | None:
        """The next target to measure (a repeat of the last one to confirm a breach), or None: the sweep is over."""
        if self.outcome().breach is not None:
            return None
        if self.steps and breach(self.steps[-1], self.limit_ms, self.latency):  # first, unconfirmed: measure again
            return self.steps[-1].target
        done = self._targets()
        if len(done) >= self.max_steps:
            return None
        if len(done) < len(self.listed):
            return float(self.listed[len(done)]) if self.listed[len(done)] <= self.max_qps else None
        last = done[-1]
        if last >= self.max_qps:
            return None
        return float(min(max(round(last * self.growth, -1), last + 1), self.max_qps))

    def add(self, step: Step) -> None:
        self.steps.append(step)

    def outcome(self) -> Knee:
        """What the steps so far show: the knee and the breach that bounds it, or no breach yet."""
        knee = None
        i = 0
        limit = self.limit_ms
        while i < len(self.steps):
            s = self.steps[i]
            why = breach(s, limit, self.latency)
            if why is None:
                knee, i = s.target, i + 1
                continue
            if self.confirm:
                again = self.steps[i + 1] if i + 1 < len(self.steps) else None
                if again is None:  # not yet re-measured
                    break
                if again.target == s.target:
                    why2 = breach(again, limit, self.latency)
                    if why2 is None:  # the breach did not repeat: the step counts as met
                        knee, i = s.target, i + 2
                        continue
                    return Knee(knee, again, why2, limit, self.highest(), self.latency)
            return Knee(knee, s, why, limit, self.highest(), self.latency)
        return Knee(None, None, "", limit, self.highest(), self.latency)  # no breach (yet): no knee to name

    def highest(self) -> float | None:
        return max((s.target for s in self.steps), default=None)


@dataclass(frozen=True)
class Knee:
    knee: float | None  # highest target met before the breach (None: no breach, or the first step breached)
    breach: Step | None  # the (confirmed) breaching step; None: no step breached
    why: str
    limit_ms: float
    highest: float | None  # highest target measured
    latency: str = "p50"  # the judged percentile

    def note(self, knee_factor: float) -> str:
        limit = f"{self.latency} within {knee_factor:g}x the first step's (limit {self.limit_ms:.2f} ms)"
        if self.highest is None:
            return "Knee: nothing was measured."
        if self.breach is None:
            return (
                f"No knee found up to {self.highest:g} req/s: every step kept its {limit} and its throughput "
                "followed the target; the sweep stopped at its bound (max_qps / max_steps)."
            )
        at = f"the step at {self.breach.target:g} req/s breached: {self.why}"
        if self.knee is None:
            return f"Knee: below the first step ({at})."
        gen = (
            " The generator, not the server, fell short there: the server's knee is at or above this."
            if self.breach.achieved
            < (1 - shortfall_tolerance(self.breach.target, self.breach.window_s)) * self.breach.target
            else ""
        )
        return (
            f"Knee: {self.knee:g} req/s, the highest step that kept its {limit} and whose throughput followed "
            f"the target; {at}.{gen}"
        )
