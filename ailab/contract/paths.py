"""Where the lab keeps things; every path is relative to the repository root unless overridden."""

from __future__ import annotations

import os
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]


def results_dir() -> Path:
    """Directory of result JSON files (override with AILAB_RESULTS_DIR, e.g. in tests)."""
    return Path(os.environ.get("AILAB_RESULTS_DIR", REPO_ROOT / "reports" / "results"))


def reports_dir() -> Path:
    """Directory that rendered markdown reports go to (override with AILAB_REPORTS_DIR)."""
    return Path(os.environ.get("AILAB_REPORTS_DIR", REPO_ROOT / "reports"))


def state_dir() -> Path:
    """Runtime state of the local platform: PIDs, ports, logs, data (override with AILAB_STATE_DIR)."""
    return Path(os.environ.get("AILAB_STATE_DIR", REPO_ROOT / ".lab"))


def work_dir() -> Path:
    """Scratch space for experiments' artifacts (models, repositories, build trees)."""
    return state_dir() / "work"
