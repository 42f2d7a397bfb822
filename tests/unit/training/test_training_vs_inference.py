"""d45: the distributed-training demo's pieces (shards, parameters, the derived comparison) and one real 1-vs-2
worker gloo run whose averaged-gradient trajectory must match the single worker's."""

from __future__ import annotations

import pytest

from ailab.contract import Context, Skip
from ailab.contract.params import ParamsError, validate
from workloads.training import dist
from workloads.training.experiments import training_vs_inference as tvi


def test_shards_are_equal_disjoint_and_cover_the_batch():
    parts = [dist.shard(64, r, 4) for r in range(4)]
    covered = sorted(i for s in parts for i in range(64)[s])
    assert covered == list(range(64))
    assert {s.stop - s.start for s in parts} == {16}


@pytest.mark.parametrize(
    ("model", "values", "field"),
    [
        (tvi.DataParallelParams, {"workers": [2, 4]}, "workers"),
        (tvi.DataParallelParams, {"workers": [1, 3]}, "workers"),
        (tvi.SyncParams, {"workers": [0, 2]}, "workers"),
        (tvi.SyncParams, {"schemes": ["gossip"]}, "schemes"),
        (tvi.SyncParams, {"gradient_mib": -1}, "gradient_mib"),
    ],
)
def test_bad_parameters_are_refused_naming_the_field(model, values, field):
    with pytest.raises(ParamsError, match=field):
        validate(model, values)


def _stored(exp: str, table: str, cols: list[str], rows: list[list]) -> dict:
    return {
        "id": exp,
        "status": "ok",
        "tables": [{"name": table, "columns": [{"name": c, "unit": ""} for c in cols], "rows": rows}],
    }


def test_comparison_takes_every_number_from_the_stored_results(tmp_path):
    stored = {
        "d45.e1": _stored(
            "d45.e1",
            "data-parallel training",
            ["workers", "global batch", "samples/s", "step"],
            [[1, 128, 1111.5, 9.25], [2, 128, 2222.5, 7.75]],
        ),
        "d45.e3": _stored(
            "d45.e3",
            "gradient synchronisation",
            ["scheme", "workers", "gradient", "sync per step"],
            [["parameter server", 8, 4.0, 33.5], ["all-reduce (gloo ring)", 8, 4.0, 12.5]],
        ),
        "d45.e4": _stored(
            "d45.e4",
            "inference vs training step",
            ["batch", "inference p99", "inference throughput", "training step / inference"],
            [[1, 0.125, 9000.0, 2.5], [256, 1.5, 170000.0, 3.25]],
        ),
    }
    ctx = Context(experiment_id="d45.e5", device="cpu", quick=False, workdir=tmp_path, result_of=stored.get)
    out = tvi.comparison(ctx, tvi.CompareParams())
    text = str(out.tables[0].rows)
    for number in ("2222.5", "0.125", "33.5", "12.5", "170000.0", "3.25", "7.75"):
        assert number in text
    assert out.derived_from == ["d45.e1", "d45.e3", "d45.e4"]


def test_comparison_without_the_measured_results_skips_naming_them(tmp_path):
    ctx = Context(experiment_id="d45.e5", device="cpu", quick=False, workdir=tmp_path, result_of=lambda _: None)
    with pytest.raises(Skip, match=r"d45\.e1"):
        tvi.comparison(ctx, tvi.CompareParams())


@pytest.mark.slow
def test_two_workers_follow_the_single_worker_trajectory(tmp_path):
    ctx = Context(experiment_id="d45.e1", device="cpu", quick=True, workdir=tmp_path)
    out = tvi.data_parallel(ctx, tvi.DataParallelParams())
    (t,) = out.tables
    cols = [c.name for c in t.columns]
    two = dict(zip(cols, t.rows[1], strict=True))
    assert two["workers"] == 2
    assert two["max |param diff| vs 1 worker"] < 1e-5
    assert two["max |param diff| across ranks"] == 0.0
