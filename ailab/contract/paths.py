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


def repo_relative(path: str | Path) -> str:
    """`path` relative to the repository when it lies inside it, otherwise unchanged: how a result records a file, so
    that a committed result names the same file whichever directory the lab was cloned into (and how the CLI names
    the files it wrote)."""
    p = Path(path)
    try:
        return str(p.relative_to(REPO_ROOT)) if p.is_absolute() else str(path)
    except ValueError:
        return str(path)


def portable(path: str) -> str:
    """`path` as a report shows it: repository-relative, also when an older result recorded it absolute in another
    checkout of the lab (recognised by its `.lab/` component, the scratch space every checkout has)."""
    shown = repo_relative(path)
    parts = Path(shown).parts
    if Path(shown).is_absolute() and ".lab" in parts:
        return str(Path(*parts[len(parts) - 1 - parts[::-1].index(".lab") :]))
    return shown
