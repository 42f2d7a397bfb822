"""d72/d83 parameters are refused when the catalogue loads (field, value, what is allowed), before any worker
starts; the open-loop summaries and verdict."""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import get_args

import pytest

from ailab.contract.params import ParamsError, validate
from ailab.curriculum.loader import CatalogueError, load_catalogue
from workloads.sched import dispatch, openloop
from workloads.sched.experiments import dispatch_policies as dp
from workloads.sched.experiments import dynamic_batching as db
from workloads.sched.experiments import queueing as q
from workloads.sched.pool import WorkerPool

BATCHING = [{"label": "none", "max_batch_size": 1}]


@pytest.fixture
def no_workers(monkeypatch: pytest.MonkeyPatch) -> None:
    """Any attempt to start workers fails the test: validation must come first."""

    def refuse(self: WorkerPool) -> None:
        raise AssertionError("a worker pool was started before the parameters were checked")

    monkeypatch.setattr(WorkerPool, "start", refuse)


@pytest.mark.parametrize(
    ("model", "params", "message"),
    [
        (dp.RoundRobinParams, {"workers": 0}, "field workers = 0: Input should be greater than or equal to 1"),
        (dp.RoundRobinParams, {"workers": 2}, "slowdown [1.0, 1.0, 4.0]: allowed one factor per worker (2 = workers)"),
        (dp.RoundRobinParams, {"slowdown": [1, 0.5, 4]}, "field slowdown.1 = 0.5: Input should be greater"),
        (dp.RoundRobinParams, {"load": 3}, "field load = 3: Input should be less than or equal to 2"),
        (dp.LeastLoadParams, {"scheduler": "fastest"}, "field scheduler = 'fastest': Input should be 'round_robin'"),
        (dp.CompareParams, {"schedulers": ["round_robin", "lottery"]}, "field schedulers.1 = 'lot"),
        (dp.CompareParams, {"loads": []}, "field loads = []: List should have at least 1 item"),
        (dp.SplitMergeParams, {"rows": 8, "parts": [1, 9]}, "parts [9]: allowed 1..rows (8)"),
        (dp.SplitMergeParams, {"strategies": ["random"]}, "field strategies.0 = 'random': Input should be 'equal'"),
        (dp.SplitMergeParams, {"repeats": 2.5}, "field repeats = 2.5: Input should be a valid integer"),
        (q.QueueParams, {"capacities": [0]}, "field capacities.0 = 0: Input should be greater than or equal to 1"),
        (q.QueueParams, {"burst": -1}, "field burst = -1: Input should be greater than or equal to 1"),
        (q.QueueParams, {"burst": 10, "bursts": 3}, "field bursts: unknown parameter (allowed: burst, capacities"),
        (db.BatchingParams, {"configs": []}, "field configs = []: List should have at least 1 item"),
        (
            db.BatchingParams,
            {"configs": [{"label": "big", "max_batch_size": 8, "preferred": [16]}]},
            "preferred [16]: allowed integers 1..max_batch_size (8)",
        ),
        (db.BatchingParams, {"configs": [{"max_batch_size": 8}]}, "field configs.0.label: required, no value given"),
        (db.BatchingParams, {}, "field configs: required, no value given"),
        (db.QpsParams, {"qps": [1000, 0]}, "field qps.1 = 0: Input should be greater than or equal to 1"),
        (db.QpsParams, {"modes": [{"label": "x", "max_batch": 4}]}, "field modes.0.max_batch: unknown parameter"),
        (db.QpsParams, {"queue_capacity": 0}, "field queue_capacity = 0: Input should be greater than or equal to 1"),
        (db.QpsParams, {"duration_s": "long"}, "field duration_s = 'long': Input should be a valid number"),
    ],
)
def test_bad_params_are_refused_naming_field_value_and_allowed(model, params, message):
    with pytest.raises(ParamsError) as e:
        validate(model, params)
    assert message in str(e.value)


def test_a_bad_binding_fails_the_catalogue_naming_file_experiment_and_field(tmp_path: Path) -> None:
    f = tmp_path / "bindings.yaml"
    f.write_text(
        "d72.e4:\n  runner: workloads.sched.experiments.dispatch_policies:compare\n"
        "  params: {loads: [0.3, 5]}\n  needs: []\n",
        encoding="utf-8",
    )
    with pytest.raises(CatalogueError) as e:
        load_catalogue(bindings=[f])
    assert "bindings.yaml" in str(e.value) and "d72.e4" in str(e.value) and "field loads.1 = 5" in str(e.value)


def test_good_params_are_typed_with_defaults_filled() -> None:
    p = validate(db.QpsParams, {"qps": [5000], "modes": [{"label": "dyn", "max_batch_size": 8, "preferred": [4]}]})
    assert isinstance(p, db.QpsParams) and p.qps == [5000.0] and p.workers == 1 and p.queue_capacity == 2048
    cfg = p.modes[0].config(p.queue_capacity)
    assert (cfg.max_batch_size, cfg.max_queue_delay_us, cfg.preferred_sizes, cfg.queue_capacity) == (8, 0, (4,), 2048)
    assert validate(dp.LeastLoadParams, {}).scheduler == "least_load"
    assert validate(dp.RoundRobinParams, {}).scheduler == "round_robin"


def test_the_scheduler_choices_are_the_dispatch_policies() -> None:
    assert get_args(dp.SchedulerName) == dispatch.SCHEDULERS


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
