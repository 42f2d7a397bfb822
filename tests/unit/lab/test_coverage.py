"""`lab coverage`: every experiment in exactly one kind, agreeing with the result files, unreadable files named."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from ailab.cli import app
from ailab.contract.paths import REPO_ROOT
from ailab.curriculum import catalogue
from ailab.results.coverage import KINDS, coverage
from ailab.results.store import load_day


def _write(root: Path, exp_id: str, host: str, **fields) -> None:
    day = root / exp_id[:3]
    day.mkdir(parents=True, exist_ok=True)
    rec = {"schema": 1, "id": exp_id, "host_class": host, "status": "ok", **fields}
    (day / f"{exp_id}.{host}.json").write_text(json.dumps(rec))


def test_each_kind_comes_from_what_the_result_files_say(tmp_path: Path) -> None:
    _write(tmp_path, "d03.e1", "cpu")
    _write(tmp_path, "d03.e2", "h200")
    _write(tmp_path, "d03.e3", "cpu", substitute={"instead_of": "TensorRT", "used": "Inductor", "why": "no TRT"})
    _write(tmp_path, "d03.e4", "cpu", derived_from=["d03.e1"])
    _write(tmp_path, "d03.e5", "cpu", status="skipped", reason="needs a GPU")
    _write(tmp_path, "d90.e1", "cpu", status="failed")
    (tmp_path / "d04").mkdir()
    (tmp_path / "d04" / "d04.e1.cpu.json").write_text("{truncated")
    cov = coverage(catalogue(), tmp_path)
    kinds = {e: k for w in cov.weeks for e, k in w.experiments.items()}
    assert [kinds[f"d03.e{i}"] for i in range(1, 6)] == [
        "measured_cpu",
        "measured_gpu",
        "substitute",
        "derived",
        "not_run",  # a skip is not a measurement; d03.e5 is bound and runnable here
    ]
    assert kinds["d90.e1"] == "writing"  # "Produce the final resume": a failed attempt does not change what it is
    assert kinds["d04.e1"] != "measured_cpu"  # the unreadable file counts for nothing ...
    assert [(p.name, "not valid JSON" in why) for p, why in cov.unreadable] == [("d04.e1.cpu.json", True)]  # ... named
    assert sum(cov.totals.values()) == 450
    assert all(sum(w.counts.values()) == 5 * len(catalogue().week(w.week)) for w in cov.weeks)


def test_coverage_agrees_with_the_committed_results() -> None:
    results = REPO_ROOT / "reports" / "results"
    cov = coverage(catalogue(), results)
    kinds = {e: k for w in cov.weeks for e, k in w.experiments.items()}
    measured = {"measured_gpu", "measured_cpu", "substitute", "derived", "generated"}
    ok = {r.id for d in catalogue().days.values() for r in load_day(d.id, results) if r.status == "ok"}
    assert {e for e, k in kinds.items() if k in measured} == ok
    assert not cov.unreadable


GENERATED = {"by": "lab diagrams", "sources": ["ailab/platform"], "files": ["docs/diagrams/week04-stack.png"]}


def test_a_generated_result_counts_as_generated_never_as_measured(tmp_path: Path) -> None:
    _write(tmp_path, "d28.e2", "cpu", generated=GENERATED)  # a diagram drawn from the code
    _write(tmp_path, "d49.e3", "cpu", status="failed", generated=GENERATED)  # a failed generation counts for nothing
    _write(tmp_path, "d63.e3", "cpu", generated={"by": "lab diagrams", "sources": ["x"], "files": []})  # malformed
    _write(tmp_path, "d70.e4", "h200", generated=GENERATED)  # on a GPU host: still not a GPU measurement
    _write(tmp_path, "d77.e2", "cpu", generated=None)  # Output's default: an ordinary measurement
    cov = coverage(catalogue(), tmp_path)
    kinds = {e: k for w in cov.weeks for e, k in w.experiments.items()}
    assert kinds["d28.e2"] == "generated" and kinds["d70.e4"] == "generated"
    assert kinds["d49.e3"] == "not_run" and kinds["d63.e3"] == "not_run"
    assert kinds["d77.e2"] == "measured_cpu"
    assert [(p.name, "generated.files" in why) for p, why in cov.unreadable] == [("d63.e3.cpu.json", True)]
    assert cov.totals["generated"] == 2


def test_lab_coverage_json_lists_every_kind_per_week() -> None:
    res = CliRunner().invoke(app, ["coverage", "--json"])
    assert res.exit_code == 0, res.output
    data = json.loads(res.stdout)
    assert len(data["weeks"]) == 13 and set(KINDS) <= set(data["totals"])
    assert "generated" in KINDS and all("generated" in w for w in data["weeks"])
    assert len(data["experiments"]) == 450


def test_lab_report_names_an_unreadable_result_and_renders_the_rest(lab_tmp: Path) -> None:
    _write(lab_tmp / "results", "d03.e1", "cpu", tables=[], notes=["fine"])
    (lab_tmp / "results" / "d03" / "d03.e2.cpu.json").write_text('{"schema": 1, "id": "d03.e2", "stat')
    res = CliRunner().invoke(app, ["report", "d03"])
    assert res.exit_code == 0, res.output
    assert "unreadable result" in res.output and "d03.e2.cpu.json: not valid JSON" in res.output
    md = (lab_tmp / "reports" / "week01" / "d03.md").read_text()
    assert "**unreadable** result file" in md and "- fine" in md
