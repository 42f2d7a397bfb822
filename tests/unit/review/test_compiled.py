"""Review runners re-present other experiments' stored rows and series (derived), never derived ones twice."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from ailab.contract import Context, Skip
from workloads.review.experiments.compiled import (
    CompiledParams,
    CurveParams,
    comparison_curves,
    experiment_ids,
    learning_curve,
    summary_tables,
)

TABLE = {
    "name": "latency",
    "columns": [{"name": "batch", "unit": ""}, {"name": "p99", "unit": "ms"}],
    "rows": [[1, 2.5], [8, 4.0]],
    "caption": "c",
}
SERIES = {
    "name": "p99 vs batch",
    "x": {"name": "batch", "unit": ""},
    "y": {"name": "p99", "unit": "ms"},
    "lines": {"ort": [[1, 2.5], [8, 4.0]]},
    "kind": "line",
}
STORED = {
    "d15.e1": {"status": "ok", "summary": "s1", "tables": [TABLE], "series": [SERIES]},
    "d15.e2": {
        "status": "ok",
        "summary": "s2",
        "tables": [TABLE],
        "substitute": {"instead_of": "TensorRT", "used": "ORT", "why": "none"},
    },
    "d16.e1": {"status": "ok", "summary": "s3", "tables": [TABLE], "derived_from": ["d15.e1"]},
    "d16.e2": {"status": "skipped", "reason": "needs GPU"},
    "d08.e1": {"status": "ok", "summary": "w2", "tables": [TABLE]},
}


def _ctx(tmp_path: Path, exp_id: str = "d21.e1") -> Context:
    return Context(experiment_id=exp_id, device="cpu", quick=False, workdir=tmp_path, result_of=STORED.get)


def test_week_days_come_from_the_week_facts() -> None:
    ids = experiment_ids([3])
    assert ids[0] == "d15.e1" and ids[-1] == "d21.e5" and len(ids) == 35


def test_summary_re_presents_measured_and_substitute_rows_only(tmp_path: Path) -> None:
    out = summary_tables(_ctx(tmp_path), CompiledParams(weeks=[3]))
    assert out.derived_from == ["d15.e1", "d15.e2"]  # d16.e1 is derived, d16.e2 skipped, d08.e1 another week
    index, *copies = out.tables
    assert [r[0] for r in index.rows] == ["d15.e1", "d15.e2"]
    assert index.rows[1][2] == "substitute: ORT instead of TensorRT"
    assert [t.name for t in copies] == ["d15.e1: latency", "d15.e2: latency"]
    assert copies[0].rows == TABLE["rows"] and copies[0].columns[1].unit == "ms"
    assert "2 of 34 experiments of week 3 have a measured result on cpu" in out.notes[0]


def test_index_only_keeps_one_row_per_table(tmp_path: Path) -> None:
    out = summary_tables(_ctx(tmp_path, "d85.e1"), CompiledParams(weeks=[2, 3], tables="index"))
    assert len(out.tables) == 1 and [r[0] for r in out.tables[0].rows] == ["d08.e1", "d15.e1", "d15.e2"]


def test_curves_carry_the_stored_series(tmp_path: Path) -> None:
    out = comparison_curves(_ctx(tmp_path, "d21.e2"), CurveParams(weeks=[3]))
    assert [s.name for s in out.series] == ["d15.e1: p99 vs batch"] and out.series[0].y.unit == "ms"
    assert out.derived_from == ["d15.e1"]


def test_learning_curve_counts_per_week_and_cumulative(tmp_path: Path) -> None:
    out = learning_curve(_ctx(tmp_path, "d85.e2"), CurveParams(weeks=[1, 2, 3]))
    assert out.tables[0].rows == [[1, 0, 0, 0], [2, 1, 0, 1], [3, 1, 1, 3]]


def test_nothing_measured_is_a_skip_naming_the_weeks(tmp_path: Path) -> None:
    with pytest.raises(Skip, match="no measured result of week 13 on this host class"):
        summary_tables(_ctx(tmp_path), CompiledParams(weeks=[13]))


@pytest.mark.parametrize("bad", [{"weeks": []}, {"weeks": [14]}, {"weeks": [2], "tables": "some"}])
def test_bad_params_name_the_field(bad: dict) -> None:
    with pytest.raises(ValidationError, match=r"weeks|tables"):
        CompiledParams(**bad)
