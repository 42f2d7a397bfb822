"""Every committed week review is exactly what `lab review` renders from the committed results: none is edited by
hand, and a result added or changed without re-rendering the reviews fails here (`lab review all` fixes it)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from ailab.contract.paths import REPO_ROOT
from ailab.curriculum import catalogue
from ailab.review.week import REVIEW_FILE, review_week

REPORTS = REPO_ROOT / "reports"
RESULTS = REPORTS / "results"


@pytest.mark.parametrize("week", range(1, 14), ids=lambda w: f"week{w:02d}")
def test_committed_review_matches_a_fresh_render(tmp_path: Path, week: int) -> None:
    fresh = review_week(week, catalogue(), root=tmp_path, results_root=RESULTS, draw=False).read_text(encoding="utf-8")
    committed_dir = REPORTS / f"week{week:02d}"
    committed = committed_dir / REVIEW_FILE
    assert committed.is_file(), f"reports/week{week:02d}/{REVIEW_FILE} missing: run `lab review week{week:02d}`"
    assert committed.read_text(encoding="utf-8") == fresh, "stale review: run `lab review all`"
    for png in re.findall(r"\]\((plots/[^)]+\.png)\)", fresh):  # every plot the review shows is committed beside it
        assert (committed_dir / png).is_file(), f"week{week:02d}/{png} missing: run `lab review week{week:02d}`"
