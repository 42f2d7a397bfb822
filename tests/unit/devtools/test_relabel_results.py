"""tools/relabel_results.py: labels are added, numbers never change, a label is never overwritten, bad input is
refused before any file is written. Runs on a copy of a committed d46 result and on small made-up records."""

from __future__ import annotations

import importlib.util
import json
import shutil
from pathlib import Path

import pytest

from ailab.contract.paths import REPO_ROOT

_spec = importlib.util.spec_from_file_location("relabel_results", REPO_ROOT / "tools" / "relabel_results.py")
relabel_results = importlib.util.module_from_spec(_spec)  # type: ignore[arg-type]
_spec.loader.exec_module(relabel_results)  # type: ignore[union-attr]

SUB = {"instead_of": "DCGM exporter", "used": "the lab's NVML exporter", "why": "no DCGM on the GPU machine"}


def _record(**extra: object) -> dict:
    alerts = {"name": "GPU alerts on the real readings",
              "columns": [{"name": n, "unit": u} for n, u in (("alert", ""), ("condition", ""), ("for (rule)", "s"),
                          ("longest run over threshold", "s"), ("would fire", ""), ("evaluated by", ""))],
              "rows": [["GPUTemperatureHigh", "> 85", 60.0, 0, "no", "python"],
                       ["GPUUtilizationHigh", "> 90", 300.0, 14.2, "no", "python"]]}  # fmt: skip
    gpu = {"name": "GPU 0 through the lab exporter",
           "columns": [{"name": "phase", "unit": ""}, {"name": "temperature max", "unit": "°C"}],
           "rows": [["idle", 37.0], ["load", 59.0]]}  # fmt: skip
    return {"id": "d46.e4", "status": "ok", "quick": True, "params": {"load_s": 15}, "tables": [gpu, alerts],
            "notes": ["measured note"], **extra}  # fmt: skip


def test_adds_the_substitute_and_the_relabelling_record_and_keeps_every_value() -> None:
    old = _record()
    new = relabel_results.relabel(old, by="observability", why="issue 13", substitute=SUB, date="2026-12-01")
    assert new["substitute"] == SUB
    assert new["relabelled"] == {"date": "2026-12-01", "by": "observability", "why": "issue 13"}
    assert new["tables"] == old["tables"] and new["params"] == old["params"] and new["notes"] == old["notes"]
    assert "substitute" not in old  # the input is not modified


def test_gpu_alert_facts_come_from_the_stored_rows() -> None:
    new = relabel_results.relabel(_record(), by="o", why="w", substitute=SUB, facts="gpu_alerts")
    added = new["notes"][1:]
    assert added[0] == "Relabelled: measured in quick mode, 15 s of matmul load (no inference server)."
    assert added[1].startswith("Relabelled: GPUTemperatureHigh (> 85 for 60 s) never fired in this run")
    assert "peak temperature 59 °C" in added[1]
    fired = _record()
    fired["tables"][1]["rows"][0][4] = "yes"
    assert " fired in this run" in relabel_results.gpu_alert_facts(fired)[1]


def test_derived_from_is_recorded() -> None:
    new = relabel_results.relabel(_record(), by="o", why="w", derived_from=["d46.e1"])
    assert new["derived_from"] == ["d46.e1"] and "substitute" not in new


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({}, "nothing to add"),
        ({"substitute": {**SUB, "why": " "}}, r"substitute \['why'\]: empty"),
        ({"substitute": SUB, "facts": "nope"}, "facts 'nope': unknown"),
        ({"substitute": SUB, "by": ""}, "--by and --reason are required"),
    ],
)
def test_bad_input_is_refused_with_the_reason(kwargs: dict, match: str) -> None:
    args = {"by": "o", "why": "w", **kwargs}
    with pytest.raises(relabel_results.RelabelError, match=match):
        relabel_results.relabel(_record(), **args)


@pytest.mark.parametrize("extra", [{"substitute": SUB}, {"derived_from": ["d01.e1"]}, {"relabelled": {"by": "x"}}])
def test_a_label_is_never_overwritten(extra: dict) -> None:
    with pytest.raises(relabel_results.RelabelError, match="already has"):
        relabel_results.relabel(_record(**extra), by="o", why="w", substitute=SUB)


def test_only_measured_results_are_labelled() -> None:
    with pytest.raises(relabel_results.RelabelError, match="status 'skipped'"):
        relabel_results.relabel(_record(status="skipped"), by="o", why="w", substitute=SUB)


def test_a_changed_number_or_note_is_caught() -> None:
    old = _record()
    new = json.loads(json.dumps(old))
    new["tables"][0]["rows"][1][1] = 60.0
    with pytest.raises(relabel_results.RelabelError, match="field 'tables' would change"):
        relabel_results.check_unchanged(old, new)
    new = {**old, "notes": ["rewritten"]}
    with pytest.raises(relabel_results.RelabelError, match="only appends notes"):
        relabel_results.check_unchanged(old, new)


def test_cli_relabels_a_committed_result_and_keeps_its_bytes_otherwise(tmp_path: Path) -> None:
    src = REPO_ROOT / "reports" / "results" / "d46" / "d46.e1.h100.json"
    f = tmp_path / src.name
    shutil.copy(src, f)
    old = json.loads(f.read_text())
    old.pop("substitute", None), old.pop("relabelled", None)  # the committed file may already be relabelled
    f.write_text(json.dumps(old, indent=1, ensure_ascii=False) + "\n")
    argv = [str(f), "--instead-of", "DCGM exporter", "--used", "NVML exporter", "--why", "no DCGM",
            "--by", "observability", "--reason", "issue 13", "--date", "2026-12-01"]  # fmt: skip
    assert relabel_results.main(argv) == 0
    new = json.loads(f.read_text())
    assert new["substitute"]["used"] == "NVML exporter" and new["relabelled"]["date"] == "2026-12-01"
    assert {k: v for k, v in new.items() if k not in ("substitute", "relabelled")} == old
    assert relabel_results.main(argv) == 2  # a second relabelling is refused; the file stays as it is
    assert json.loads(f.read_text()) == new


def test_cli_writes_nothing_when_one_file_is_bad(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    good, bad = tmp_path / "good.json", tmp_path / "bad.json"
    good.write_text(json.dumps(_record(), indent=1) + "\n")
    bad.write_text("{truncated")
    before = good.read_text()
    assert relabel_results.main([str(good), str(bad), "--derived-from", "d46.e1", "--by", "o", "--reason", "w"]) == 2
    assert good.read_text() == before
    assert "bad.json" in capsys.readouterr().err
