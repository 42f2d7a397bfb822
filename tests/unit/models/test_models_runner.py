"""d03 end to end: every experiment runs with --quick through the real runner into a temporary results dir."""

from __future__ import annotations

import json
from pathlib import Path

from ailab.curriculum import catalogue
from ailab.results import provenance
from ailab.runner import run_one


def test_d03_quick_runs_produce_rows(lab_tmp: Path) -> None:
    prov = provenance.collect()
    records = {}
    for exp in catalogue().day(3).experiments:
        out = run_one(exp, "cpu", True, prov, log=lambda _: None)
        assert out.status == "ok", f"{exp.id}: {out.reason}"
        assert out.path is not None and out.path.is_relative_to(lab_tmp / "results")
        records[exp.id] = json.loads(out.path.read_text())
    for rid, rec in records.items():
        assert rec["quick"] is True and rec["tables"], rid
        assert all(t["rows"] for t in rec["tables"]), rid
    # e2: one dynamic-batch session served batches 1, 8 and 32, and said why there is no CUDA EP row
    e2 = records["d03.e2"]["tables"][0]
    assert [r[1] for r in e2["rows"]] == [1, 8, 32] and all(r[-1] == "ok" for r in e2["rows"])
    assert any("CUDA EP not measured" in n for n in records["d03.e2"]["notes"])
    # e4: the export failure is a recorded row, not a failed experiment
    e4 = records["d03.e4"]["tables"][0]
    assert any(r[2] == "error" and "Couldn't export" in r[6] for r in e4["rows"])
    # e1 and e3: thread settings are recorded with the parameters
    assert records["d03.e1"]["params"]["intra_op_num_threads"] == 1
    assert {r[0] for r in records["d03.e3"]["tables"][0]["rows"]} == {"disabled", "all"}


def test_bad_parameters_fail_before_anything_runs(lab_tmp: Path) -> None:
    from ailab.curriculum.schema import Binding

    exp = catalogue().experiments["d03.e1"]
    bad = exp.model_copy(
        update={
            "binding": Binding(runner=exp.binding.runner, params={**exp.binding.params, "levels": ["basic", "max"]})
        }
    )
    out = run_one(bad, "cpu", False, provenance.collect(), log=lambda _: None)
    assert out.status == "failed"
    assert out.reason == "ValueError: params.levels ['basic', 'max']: allowed disabled, basic, extended, all"
    assert not (lab_tmp / "state" / "work" / "models").exists()  # nothing was trained or exported
    exp3 = catalogue().experiments["d03.e3"]
    bad3 = exp3.model_copy(
        update={"binding": Binding(runner=exp3.binding.runner, params={**exp3.binding.params, "opset": 9})}
    )
    assert run_one(bad3, "cpu", False, provenance.collect(), log=lambda _: None).reason == (
        "ValueError: params.opset [9]: allowed 13..20"
    )
