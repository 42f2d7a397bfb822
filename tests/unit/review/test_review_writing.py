"""Writing-task templates: one per task of issue 19, each a writing task in coverage (never a result), filled only
with facts copied from result files (every result it cites exists; tables come from them), and the committed
docs/writing/ is what `lab writing` renders from the committed results."""

from __future__ import annotations

import json
import re
from pathlib import Path

from ailab.contract.paths import REPO_ROOT
from ailab.curriculum import catalogue
from ailab.review import writing

RESULTS = REPO_ROOT / "reports" / "results"


def _result(tmp: Path, exp_id: str, rows: list[list[object]], **extra: object) -> None:
    day = exp_id.split(".")[0]
    rec = {
        "schema": 1,
        "id": exp_id,
        "status": "ok",
        "host_class": "cpu",
        "tables": [{"name": "latency", "columns": [{"name": "batch"}, {"name": "p99", "unit": "ms"}], "rows": rows}],
        **extra,
    }
    (tmp / day).mkdir(parents=True, exist_ok=True)
    (tmp / day / f"{exp_id}.cpu.json").write_text(json.dumps(rec), encoding="utf-8")


def test_every_task_is_a_writing_task_without_a_runner() -> None:
    cat = catalogue()
    for t in writing.TASKS:
        exp = cat.experiments[t.id]
        assert exp.writing and exp.binding is None, t.id  # coverage keeps it `writing task`


def test_day_template_copies_the_days_tables_and_links_each_result(tmp_path: Path) -> None:
    _result(tmp_path, "d72.e1", [[1, 2.75], [8, 41.5]])
    _result(tmp_path, "d72.e2", [[1, 3.0]], derived_from=["d72.e1"])
    task = next(t for t in writing.TASKS if t.id == "d72.e5")
    md = writing.render_task(task, catalogue(), tmp_path)
    assert "| 8 | 41.5 |" in md and "[d72.e1.cpu.json](../../reports/results/d72/d72.e1.cpu.json)" in md
    assert "d72.e2.cpu.json" not in md  # a derived result is not a measurement of the day
    assert "| measured on CPU | 1 |" in md and "| derived | 1 |" in md
    assert "### Summary" in md and "_(a person writes this)_" in md


def test_week_template_lists_measured_results_and_the_stored_highlights(tmp_path: Path) -> None:
    _result(tmp_path, "d43.e1", [[1, 2.0]])
    hl = "d43.e1 (x): lowest p99 2 ms — [d43.e1.cpu.json](../results/d43/d43.e1.cpu.json)"
    rec = {
        "schema": 1,
        "id": "d49.e5",
        "status": "ok",
        "host_class": "cpu",
        "derived_from": ["d43.e1"],
        "tables": [{"name": "highlights", "columns": [], "rows": [[1, "d43.e1", hl]]}],
    }
    (tmp_path / "d49").mkdir()
    (tmp_path / "d49" / "d49.e5.cpu.json").write_text(json.dumps(rec), encoding="utf-8")
    md = writing.render_task(writing.TASKS[0], catalogue(), tmp_path)  # d49.e2: week 7
    assert "| d43.e1 |" in md and "(../../reports/results/d43/d43.e1.cpu.json)" in md
    assert "What went wrong or surprised" in md


def test_committed_templates_are_fresh_and_cite_existing_results() -> None:
    assert writing.stale(catalogue(), results_root=RESULTS) == [], "docs/writing/ is stale: run `lab writing`"
    for f in writing.WRITING_DIR.glob("d*.md"):
        for link in re.findall(r"\]\((\.\./\.\./reports/results/[^)]+)\)", f.read_text(encoding="utf-8")):
            assert (f.parent / link).resolve().is_file(), f"{f.name}: {link}"


def test_the_survey_template_lists_the_stored_substitutes_and_the_generated_diagram(tmp_path: Path) -> None:
    sub = {"instead_of": "Thanos", "used": "VictoriaMetrics 1.79", "why": "not installable here"}
    _result(tmp_path, "d55.e3", [[1, 2.0]], substitute=sub)
    _result(tmp_path, "d68.e4", [[1, 3.0]], substitute=sub)
    gen = {"by": "lab diagrams", "sources": ["ailab/platform"], "files": ["docs/diagrams/inference-architectures.png"]}
    _result(tmp_path, "d71.e2", [], generated=gen, artifacts={"inference-architectures": gen["files"][0]})
    task = next(t for t in writing.TASKS if t.id == "d71.e4")
    md = writing.render_task(task, catalogue(), tmp_path)
    row = next(line for line in md.splitlines() if line.startswith("| Thanos |"))
    assert "| VictoriaMetrics 1.79 | not installable here |" in row
    assert "d55.e3.cpu.json" in row and "d68.e4.cpu.json" in row  # one row per substitute, every result linked
    assert "![inference-architectures](../../docs/diagrams/inference-architectures.png)" in md
    assert "| generated | 1 |" in md and "## Measured\n\n_No measured result" in md  # a diagram is not measured
    assert "### Projects surveyed" in md
