"""d72/d83 runners refuse bad parameters before any worker process starts; the open-loop summaries and verdict."""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest

from ailab.contract import Context
from workloads.sched import exp_d72, exp_d83, openloop
from workloads.sched.pool import WorkerPool


@pytest.fixture
def no_workers(monkeypatch: pytest.MonkeyPatch) -> None:
    """Any attempt to start workers fails the test: validation must come first."""

    def refuse(self: WorkerPool) -> None:
        raise AssertionError("a worker pool was started before the parameters were checked")

    monkeypatch.setattr(WorkerPool, "start", refuse)


def _ctx(eid: str, params: dict, tmp_path: Path) -> Context:
    return Context(eid, params, "cpu", True, tmp_path, log=lambda _m: None)


@pytest.mark.parametrize(
    ("runner", "params", "message"),
    [
        (exp_d72.round_robin, {"workers": 0}, "params.workers 0: allowed integer 1..8"),
        (exp_d72.round_robin, {"workers": 2, "slowdown": [1, 1, 4]}, "params.slowdown [1.0, 1.0, 4.0]: allowed one"),
        (exp_d72.round_robin, {"slowdown": [1, 0.5, 4]}, "params.slowdown [1, 0.5, 4]: allowed a non-empty list"),
        (exp_d72.round_robin, {"load": 3}, "params.load 3: allowed number 0.01..2"),
        (exp_d72.least_load, {"scheduler": "fastest"}, "params.scheduler 'fastest': allowed round_robin, least_load"),
        (exp_d72.compare, {"schedulers": ["round_robin", "lottery"]}, "allowed a non-empty list of round_robin"),
        (exp_d72.compare, {"loads": []}, "params.loads []: allowed a non-empty list of numbers"),
        (
            exp_d72.split_merge,
            {"rows": 8, "parts": [1, 9]},
            "params.parts [1, 9]: allowed a non-empty list of integers 1..8",
        ),
        (exp_d72.split_merge, {"strategies": ["random"]}, "params.strategies ['random']: allowed a non-empty list of"),
        (exp_d83.request_queue, {"capacities": [0]}, "params.capacities [0]: allowed a non-empty list of integers"),
        (exp_d83.request_queue, {"burst": -1}, "params.burst -1: allowed integer 1..100000"),
        (exp_d83.dynamic_batching, {"configs": []}, "params.configs []: allowed a non-empty list"),
        (
            exp_d83.dynamic_batching,
            {"configs": [{"label": "big", "max_batch_size": 8, "preferred": [16]}]},
            "params.configs[0] {'label': 'big', 'max_batch_size': 8, 'preferred': [16]}: preferred_sizes [16]: "
            "allowed integers 1..max_batch_size (8)",
        ),
        (exp_d83.dynamic_batching, {"configs": [{"max_batch_size": 8}]}, "allowed a mapping with label"),
        (exp_d83.qps_levels, {"qps": [1000, 0]}, "params.qps [1000, 0]: allowed a non-empty list of numbers 1..100000"),
        (exp_d83.qps_levels, {"modes": [{"label": "x", "max_batch": 4}]}, "allowed a mapping with label and any of"),
        (exp_d83.latency_curves, {"queue_capacity": 0}, "params.queue_capacity 0: allowed integer 1..1000000"),
        (exp_d83.latency_curves, {"duration_s": "long"}, "params.duration_s 'long': allowed number 0.2..60"),
    ],
)
def test_bad_params_are_refused_naming_field_value_and_allowed_before_workers_start(
    runner, params, message, tmp_path, no_workers
):
    with pytest.raises(ValueError) as e:
        runner(_ctx("d72.e1", params, tmp_path))
    assert message in str(e.value)


def test_window_counts_arrivals_and_overlaps():
    w = openloop.Window(10.0, 12.0)
    assert w.holds(10.0) and not w.holds(12.0) and w.seconds == 2.0
    assert w.overlap(9.0, 10.5) == 0.5 and w.overlap(11.5, 13.0) == 0.5 and w.overlap(12.5, 13.0) == 0.0


def test_percentile_curve_and_cdf_are_exact_over_the_samples():
    lat = [float(v) for v in range(1, 101)]  # 1..100 ms
    assert openloop.percentile_curve(lat, (50, 99, 99.9)) == [[50, 50.0], [99, 99.0], [99.9, 100.0]]
    c = openloop.cdf(lat, n_points=4)
    assert c[0] == [1.0, 0.01] and c[-1] == [100.0, 1.0]
    assert all(a[0] <= b[0] and a[1] < b[1] for a, b in itertools.pairwise(c))


def test_verdict_uses_loadgen_rules_for_a_saturated_queue_and_for_a_met_target():
    over = openloop.Run(target_qps=5000, window_s=3.0, sent=15000, ok=6000, errors={"rejected": 9000})
    over.completed_in_window = 6000
    over.busy, over.queue_ms = 0.95, 600.0
    assert over.judge().startswith("server-bound: sent 5000, served 2000 of 5000 req/s")
    fine = openloop.Run(target_qps=1000, window_s=3.0, sent=3000, ok=3000)
    fine.completed_in_window = 3000
    assert fine.judge() == "target met"
    slow_gen = openloop.Run(target_qps=10000, window_s=3.0, sent=15000, ok=15000)
    slow_gen.completed_in_window = 15000
    slow_gen.busy, slow_gen.queue_ms = 0.2, 0.1
    assert slow_gen.judge().startswith("generator-bound")


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--qps", "1000", "0"], "error: --qps 0: allowed a number >= 1"),
        (["--max-batch", "0"], "error: --max-batch 0: allowed integer >= 1"),
        (["--max-batch", "8", "--preferred", "16"], "error: --preferred [16]: allowed integers 1..max_batch_size (8)"),
        (["--delay-us", "-5"], "error: --delay-us -5: allowed integer >= 0"),
        (["--duration", "0"], "error: --duration 0: allowed a number > 0 (seconds)"),
    ],
)
def test_demo_cli_refuses_bad_options_with_exit_2_before_workers_start(argv, message, capsys, no_workers):
    from workloads.sched import high_concurrency_demo

    assert high_concurrency_demo.main(argv) == 2
    assert message in capsys.readouterr().err
