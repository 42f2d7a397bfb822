"""Every committed report is exactly what `lab report` renders from the committed results: no report is edited by
hand, and no result changed without its report being re-rendered (`lab report weekNN` fixes a failure here)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from ailab.contract.paths import REPO_ROOT
from ailab.curriculum import catalogue
from ailab.report.render import report_week

REPORTS = REPO_ROOT / "reports"
RESULTS = REPORTS / "results"


@pytest.mark.parametrize("week", range(1, 14), ids=lambda w: f"week{w:02d}")
def test_committed_reports_match_a_fresh_render(tmp_path: Path, week: int) -> None:
    report_week(week, catalogue(), root=tmp_path, results_root=RESULTS, draw=False)
    fresh_dir, committed_dir = tmp_path / f"week{week:02d}", REPORTS / f"week{week:02d}"
    fresh = {p.name: p.read_text(encoding="utf-8") for p in fresh_dir.glob("*.md")}
    committed = {  # review.md is `lab review`'s (tests/unit/review checks it)
        p.name: p.read_text(encoding="utf-8") for p in committed_dir.glob("*.md") if p.name != "review.md"
    }
    assert sorted(fresh) == sorted(committed), f"run: lab report week{week:02d}"
    stale = [name for name in fresh if fresh[name] != committed[name]]
    assert not stale, f"stale reports {stale}: run `lab report week{week:02d}`"
    for md in committed.values():  # every plot a report shows is committed beside it
        for png in re.findall(r"\]\((plots/[^)]+\.png)\)", md):
            assert (committed_dir / png).is_file(), f"week{week:02d}/{png} missing: run `lab report week{week:02d}`"
