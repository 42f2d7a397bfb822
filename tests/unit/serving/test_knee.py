"""d07.e1's sweep plan and knee on synthetic steps: no server, the decision alone (workloads/serving/knee.py).

A synthetic server follows the target up to its capacity, with a flat latency until a cliff; the sweep is
driven exactly as the runner drives it (next_target -> measure -> add).
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

from workloads.serving.knee import Step, Sweep, breach

LISTED = [100.0, 200.0, 400.0, 600.0, 800.0, 1000.0, 1500.0, 2000.0]


def server(capacity: float, cliff: float = float("inf"), lat: float = 3.0, gen_max: float = float("inf")):
    """A step measured on a server that serves up to `capacity` req/s; latency x10 from `cliff` req/s on."""

    def measure(target: float) -> Step:
        sent = min(target, gen_max)
        return Step(target, sent, min(sent, capacity), lat * (10 if target >= cliff else 1), 4.0, "synthetic")

    return measure


def drive(sweep: Sweep, measure: Callable[[float], Step]) -> list[float]:
    targets = []
    while (q := sweep.next_target()) is not None:
        targets.append(q)
        sweep.add(measure(q))
        assert len(targets) < 200, "the sweep must end"
    return targets


def test_all_listed_steps_met_the_sweep_goes_on_until_throughput_stops_following():
    """The d07.e1 defect: every listed step met, yet it named the last one the knee. Now it grows past them."""
    sw = Sweep(LISTED, growth=1.25)
    targets = drive(sw, server(capacity=2800))
    assert targets[: len(LISTED)] == LISTED
    assert targets[len(LISTED) : len(LISTED) + 2] == [2500.0, 3120.0]  # x1.25, rounded to 10 req/s
    assert targets[-2:] == [3120.0, 3120.0]  # the breaching step measured twice (confirmed)
    k = sw.outcome()
    assert k.knee == 2500 and k.breach is not None and k.breach.target == 3120
    assert "served 2800 of 3120" in k.why
    assert k.note(2.0).startswith("Knee: 2500 req/s")


def test_a_latency_cliff_breaches_before_the_capacity():
    sw = Sweep(LISTED, knee_factor=2.0)
    drive(sw, server(capacity=10_000, cliff=1000))
    k = sw.outcome()
    assert k.knee == 800 and k.breach.target == 1000
    assert "p50 30.00 ms > limit 6.00 ms" in k.why


def test_an_absolute_limit_applies_when_lower_and_the_judged_percentile_is_named():
    sw = Sweep(LISTED, knee_factor=5.0, limit_ms_abs=2.0, latency="p99")  # 3 ms everywhere: the first step breaches
    drive(sw, server(capacity=10_000))
    k = sw.outcome()
    assert k.knee is None and k.breach.target == 100
    assert k.why == "p99 3.00 ms > limit 2.00 ms"
    assert k.note(5.0).startswith("Knee: below the first step")


def test_no_breach_up_to_the_bound_names_no_knee():
    sw = Sweep(LISTED, growth=1.5, max_qps=5000)
    targets = drive(sw, server(capacity=1e9))
    assert targets[-1] == 5000 and targets[len(LISTED) :] == [3000.0, 4500.0, 5000.0]
    k = sw.outcome()
    assert k.knee is None and k.breach is None and k.highest == 5000
    note = k.note(2.0)
    assert note.startswith("No knee found up to 5000 req/s") and "Knee:" not in note


def test_max_steps_bounds_the_sweep():
    sw = Sweep(LISTED, max_steps=10)
    targets = drive(sw, server(capacity=1e9))
    assert len(targets) == 10 and sw.outcome().breach is None


def test_an_unconfirmed_breach_is_measured_again_and_the_sweep_goes_on():
    noisy = {600.0: 1}  # one noisy window at 600 req/s

    def measure(q: float) -> Step:
        if noisy.get(q):
            noisy[q] -= 1
            return Step(q, q, q, 50.0, 4.0)
        return server(capacity=1000)(q)

    sw = Sweep(LISTED)
    targets = drive(sw, measure)
    assert targets.count(600.0) == 2  # re-measured once, then met
    k = sw.outcome()
    assert k.knee == 1000 and k.breach.target == 1500


def test_without_confirm_the_first_breach_ends_the_sweep():
    sw = Sweep(LISTED, confirm=False)
    steps = [Step(100, 100, 100, 3.0, 4.0), Step(200, 200, 200, 9.0, 4.0)]
    for s in steps:
        assert sw.next_target() == s.target
        sw.add(s)
    assert sw.next_target() is None
    assert sw.outcome().knee == 100


def test_a_generator_that_cannot_send_the_target_breaches_and_says_so():
    sw = Sweep(LISTED)
    drive(sw, server(capacity=1e9, gen_max=1700))
    k = sw.outcome()
    assert k.knee == 1500 and k.breach.target == 2000
    assert k.why.startswith("the generator sent only 1700 of 2000 req/s")
    assert "The generator, not the server, fell short" in k.note(2.0)


@pytest.mark.parametrize(
    ("step", "limit", "breached"),
    [
        (Step(1000, 1000, 1000, 5.0, 4.0), 6.0, False),
        (Step(1000, 1000, 1000, 6.5, 4.0), 6.0, True),  # latency
        (Step(1000, 1000, 960, 5.0, 4.0), 6.0, False),  # 4 % short: Poisson noise at 4000 arrivals (5 % allowed)
        (Step(1000, 1000, 900, 5.0, 4.0), 6.0, True),  # 10 % short: not following the target
        (Step(100, 100, 90, 5.0, 4.0), 6.0, False),  # 400 arrivals: 3 sigma = 15 % allowed
        (Step(1000, 1000, 1000, float("nan"), 4.0), 6.0, True),  # nothing served
    ],
)
def test_breach_criteria(step, limit, breached):
    assert (breach(step, limit) is not None) == breached


def test_a_bad_plan_is_refused():
    with pytest.raises(ValueError, match="strictly increasing"):
        Sweep([100.0, 100.0])
    with pytest.raises(ValueError, match="growth"):
        Sweep([100.0], growth=1.0)
