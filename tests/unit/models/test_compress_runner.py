"""d61 through the real runner: bad parameters fail before any training; every experiment runs with --quick."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ailab.curriculum import catalogue
from ailab.curriculum.schema import Binding
from ailab.results import provenance
from ailab.runner import run_one
from workloads.models import compress


def _run_with(exp_id: str, **params: object):
    exp = catalogue().experiments[exp_id]
    bad = exp.model_copy(
        update={"binding": Binding(runner=exp.binding.runner, params={**exp.binding.params, **params})}
    )
    return run_one(bad, "cpu", False, provenance.collect(), log=lambda _: None)


@pytest.mark.parametrize(
    ("exp_id", "params", "reason"),
    [
        ("d61.e1", {"sparsities": [0.5, 1.5]}, "params.sparsities [0.5, 1.5]: allowed numbers with 0 <= value < 1"),
        ("d61.e1", {"methods": ["magnitude"]}, "params.methods ['magnitude']: allowed unstructured, structured"),
        ("d61.e2", {"methods": ["torch_static", "fp8"]},
         "params.methods ['torch_static', 'fp8']: allowed torch_dynamic, torch_static, ort_dynamic, ort_static"),
        ("d61.e3", {"temperature": -1}, "params.temperature [-1]: allowed numbers > 0"),
        ("d61.e4", {"temperatures": [1, 2, 0]}, "params.temperatures [1, 2, 0]: allowed numbers > 0"),
        ("d61.e4", {"seeds": []}, "params.seeds []: allowed a non-empty list of integers >= 0"),
        ("d61.e5", {"channel_amount": 1.0}, "params.channel_amount [1.0]: allowed numbers with 0 <= value < 1"),
    ],
)  # fmt: skip
def test_bad_parameters_fail_before_anything_is_trained(
    lab_tmp: Path, monkeypatch: pytest.MonkeyPatch, exp_id: str, params: dict, reason: str
) -> None:
    def no_training(*_a: object, **_k: object) -> None:
        raise AssertionError("trained before checking the parameters")

    monkeypatch.setattr(compress, "fit", no_training)
    monkeypatch.setattr(compress, "teacher", no_training)
    out = _run_with(exp_id, **params)
    assert (out.status, out.reason) == ("failed", f"ValueError: {reason}")


def test_d61_quick_runs_produce_rows(lab_tmp: Path) -> None:
    prov = provenance.collect()
    records = {}
    for exp in catalogue().day(61).experiments:
        out = run_one(exp, "cpu", True, prov, log=lambda _: None)
        assert out.status == "ok", f"{exp.id}: {out.reason}"
        records[exp.id] = json.loads(out.path.read_text())
    for rid, rec in records.items():
        assert rec["quick"] is True and all(t["rows"] for t in rec["tables"]), rid
    # e1: the dense baseline and every pruned model appear in both runtimes, structured pruning has fewer parameters
    size = records["d61.e1"]["tables"][0]
    params = {(r[0], r[1]): r[4] for r in size["rows"]}
    assert params[("structured", 50.0)] < params[("none", 0.0)] == params[("unstructured", 90.0)]
    lat = records["d61.e1"]["tables"][1]
    assert {(r[0], r[1]) for r in lat["rows"]} >= {("dense baseline", "torch"), ("dense baseline", "ort")}
    # e2: every method has a row, and each runtime's FP32 agrees with itself
    e2 = records["d61.e2"]["tables"][0]["rows"]
    assert len(e2) == 6 and all(r[3] == 100.0 for r in e2 if r[0] == "FP32")
    # e4: a control row plus one row per temperature, each with a verdict
    e4 = records["d61.e4"]["tables"][0]["rows"]
    assert [r[0] for r in e4] == ["control (CE only)", "1", "4"]
    assert all(r[-1] in {"within noise", "better", "worse"} for r in e4[1:])
    # e5: speedups are relative to the FP32 CNN of the same runtime
    e5 = records["d61.e5"]["tables"][0]
    cols = [c["name"] for c in e5["columns"]]
    for r in e5["rows"]:
        if r[0] == "FP32 baseline CNN":
            assert r[cols.index("speedup batch 1")] == 1.0 and r[cols.index("speedup batch 64")] == 1.0
