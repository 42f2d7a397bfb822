"""Shared fixtures: every test writes results, reports and runtime state into its own temporary tree."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture
def lab_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Point results, reports and .lab state at tmp_path so tests never touch the repository's files."""
    monkeypatch.setenv("AILAB_RESULTS_DIR", str(tmp_path / "results"))
    monkeypatch.setenv("AILAB_REPORTS_DIR", str(tmp_path / "reports"))
    monkeypatch.setenv("AILAB_STATE_DIR", str(tmp_path / "state"))
    return tmp_path
