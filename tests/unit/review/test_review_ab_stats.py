"""A/B statistics: the power and sample-size formulas against textbook values, and the d62.e3/d62.e5 runners on
stored rows (every v1/v2 cell copied from its source, only v2 - v1 computed)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from ailab.contract import Context, Skip
from workloads.review.experiments.ab_stats import (
    PowerParams,
    TableParams,
    ab_power,
    ab_table,
    n_per_arm,
    proportions_n,
    z_power,
)

LATENCY = {
    "name": "latency",
    "columns": [
        {"name": c, "unit": u}
        for c, u in [
            ("weights", "v1:v2"),
            ("concurrency", ""),
            ("version", ""),
            ("answers", ""),
            ("p50", "ms"),
            ("p90", "ms"),
            ("p99", "ms"),
            ("throughput", "req/s"),
        ]
    ],
    "rows": [["70:30", 1, "v1", 3500, 2.0, 4.5631, 9.0, 100.0], ["70:30", 1, "v2", 1500, 3.0, 5.5631, 9.5, 40.0]],
}
ACC = {
    "name": "teacher vs students",
    "columns": [{"name": "model", "unit": ""}, {"name": "accuracy mean", "unit": "%"}],
    "rows": [["teacher", 60.0], ["student", 50.0], ["twin", 60.0]],
}
STORED: dict[str, dict[str, Any]] = {
    "d40.e2": {"id": "d40.e2", "status": "ok", "tables": [LATENCY]},
    "d61.e3": {"id": "d61.e3", "status": "ok", "tables": [ACC]},
    "d34.e1": {
        "id": "d34.e1",
        "status": "ok",
        "tables": [
            {
                "name": "policies",
                "columns": [{"name": "version_policy"}, {"name": "top-1 agreement v1/v2"}],
                "rows": [["latest 1", "-"], ["latest 2", 99.22]],
            }
        ],
    },
}


def _ctx(tmp_path: Path, exp: str = "d62.e3") -> Context:
    return Context(experiment_id=exp, device="cpu", quick=False, workdir=tmp_path, result_of=STORED.get)


def test_sample_size_and_power_match_textbook_values() -> None:
    # Cohen's d = 0.5, alpha 0.05 two-sided, power 0.8: 2 (1.96 + 0.8416)^2 / 0.25 = 62.8 per group (normal approx.)
    assert n_per_arm(0.5, 1.0, 0.05, 0.8) == pytest.approx(62.79, abs=0.01)
    assert z_power(0.5, 1.0 * (2 / 63) ** 0.5, 0.05) == pytest.approx(0.80, abs=0.005)
    assert z_power(0.0, 0.1, 0.05) == pytest.approx(0.05)  # no effect: power is alpha
    # two proportions 0.5 vs 0.6 (Fleiss, no continuity correction): about 387 per group
    assert proportions_n(0.5, 0.6, 0.05, 0.8) == pytest.approx(387.3, abs=0.5)
    assert proportions_n(0.9, 0.9, 0.05, 0.8) == float("inf")


def test_power_runner_uses_the_measured_difference_and_spread(tmp_path: Path) -> None:
    out = ab_power(
        _ctx(tmp_path), PowerParams(latency_source="d40.e2", accuracy_sources=["d61.e3"], sample_sizes=[10, 63, 1000])
    )
    measured, grid, acc, mde = out.tables
    row = measured.rows[0]
    assert row[:4] == ["70:30 c1", 2.0, 3.0, 1.0]
    assert row[4] == pytest.approx(2.0, abs=1e-3)  # sigma = (p90 - p50) / z(0.9) = 2.5631 / 1.2816
    assert row[-1] == 63  # effect 1 ms, sigma 2 ms: d = 0.5 -> 63 per arm
    assert grid.rows[0][2] == pytest.approx(0.8, abs=0.01) and grid.rows[0][1] < grid.rows[0][2] < grid.rows[0][3]
    assert acc.rows[0][:6] == ["d61.e3", "teacher", "student", 60.0, 50.0, -10.0]
    assert acc.rows[1][-1] is None  # zero measured difference: no finite sample size
    assert [r[0] for r in mde.rows] == [10, 63, 1000] and mde.rows[0][3] > mde.rows[2][3]
    assert out.derived_from == ["d40.e2", "d61.e3"]


def test_table_copies_v1_and_v2_and_computes_only_the_difference(tmp_path: Path) -> None:
    out = ab_table(_ctx(tmp_path, "d62.e5"), TableParams(phases_source="d40.e3"))
    rows = out.tables[0].rows
    assert ["p50", "70:30 c1", "ms", 2.0, 3.0, 1.0, "d40.e2"] in rows
    assert ["throughput", "70:30 c1", "req/s", 100.0, 40.0, -60.0, "d40.e2"] in rows
    assert ["top-1 agreement of v1 and v2", "latest 2", "%", None, None, 99.22, "d34.e1"] in rows
    assert out.derived_from == ["d34.e1", "d40.e2"]  # d40.e3 not stored here: left out, not invented


def test_missing_source_is_a_skip(tmp_path: Path) -> None:
    with pytest.raises(Skip, match=r"derived from d99\.e1"):
        ab_power(_ctx(tmp_path), PowerParams(latency_source="d99.e1"))
