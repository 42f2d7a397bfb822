"""d51/d56's multi-GPU serving path run with CPU worker processes (no GPU in CI; the runners themselves skip below
two GPUs): the dispatcher spreads requests over every worker, windows and summaries add up, a dead worker becomes
counted errors instead of a crash, bad shapes and parameters are refused naming the field."""

from __future__ import annotations

import threading
import time

import pytest

from ailab.contract import Context, Skip
from ailab.contract.params import ParamsError, validate
from workloads.parallel.experiments import multigpu_serving as ms
from workloads.parallel.multigpu import Pool, Shape, closed_loop

TINY = Shape(dim=32, layers=2, batch=4)


def test_requests_spread_over_every_worker_and_windows_add_up():
    with Pool(2, "cpu", TINY) as pool:
        run = closed_loop(pool, concurrency=4, seconds=1.5, window_s=0.5)
    s = run.summary()
    assert s["errors"] == 0
    assert all(n > 0 for n in s["per_worker"])
    assert sum(s["per_worker"]) == s["requests"] == len(run.latencies_ms)
    assert sum(w["requests"] for w in run.windows) == s["requests"]
    assert len(run.windows) >= 3
    assert 0 < s["p50_ms"] <= s["p99_ms"]


def test_windows_follow_the_schedule_even_when_the_sampler_wakes_late():
    """A busy host can wake the sampling thread late (CI once saw a 0.5 s window swallowed by the next). Windows are
    cut at start + k * window_s whatever the wake-up time; a sampler that takes 0.7 s stands in for the late wake."""
    calls = []

    def slow_sample() -> dict:
        calls.append(1)
        if len(calls) == 1:
            time.sleep(0.7)
        return {"k": len(calls)}

    with Pool(1, "cpu", TINY) as pool:
        run = closed_loop(pool, concurrency=2, seconds=1.5, window_s=0.5, sample=slow_sample)
    assert [w["until_s"] for w in run.windows] == [0.5, 1.0, 1.5]
    assert [w["k"] for w in run.windows] == [1, 2, 3]
    assert sum(w["requests"] for w in run.windows) == run.summary()["requests"]


def test_a_dead_worker_becomes_counted_errors_and_the_other_keeps_serving():
    with Pool(2, "cpu", TINY) as pool:
        killer = threading.Timer(0.5, pool.workers[1].proc.kill)
        killer.start()
        run = closed_loop(pool, concurrency=2, seconds=1.5, policy="round_robin")
        killer.join()
    assert run.errors > 0
    assert run.per_worker[0] > 0
    assert run.errors < 200  # each failure backs off: an outage, not a flood of instant failures


def test_bad_shape_and_pool_arguments_are_refused_naming_the_field():
    with pytest.raises(ValueError, match=r"dim 4: allowed 8\.\.32768"):
        Pool(2, "cpu", Shape(dim=4))
    with pytest.raises(ValueError, match="device 'tpu'"):
        Pool(2, "tpu", TINY)
    with pytest.raises(ValueError, match="workers 0"):
        Pool(0, "cpu", TINY)


@pytest.mark.parametrize(
    ("model", "values", "field"),
    [
        (ms.SpreadParams, {"concurrency": []}, "concurrency"),
        (ms.SpreadParams, {"policy": "random"}, "policy"),
        (ms.LongRunParams, {"window_s": 0}, "window_s"),
    ],
)
def test_bad_parameters_are_refused_naming_the_field(model, values, field):
    with pytest.raises(ParamsError, match=field):
        validate(model, values)


def test_runners_skip_without_two_gpus(tmp_path):
    ctx = Context(experiment_id="d51.e5", device="cpu", quick=True, workdir=tmp_path)
    with pytest.raises(Skip, match="needs 2 or more GPUs"):
        ms.spread(ctx, ms.SpreadParams())
    with pytest.raises(Skip, match="needs 2 or more GPUs"):
        ms.long_run(ctx, ms.LongRunParams())
