"""Molecule scenarios in podman; the systemd base image is built from Debian packages when missing (no pulls)."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest
from lab_ansible import BASE_IMAGE, BASE_PACKAGES, PREPROVISIONED_IMAGE, REPO


def slow_selected(config: pytest.Config) -> bool:
    """Slow scenarios run only when asked: `-m slow` (or any -m naming slow) or AILAB_RUN_SLOW=1."""
    expr = config.getoption("markexpr") or ""
    return ("slow" in expr and "not slow" not in expr) or os.environ.get("AILAB_RUN_SLOW") == "1"


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if slow_selected(config):
        return
    skip = pytest.mark.skip(reason="slow scenario: run with `pytest -m slow tests/molecule` or AILAB_RUN_SLOW=1")
    here = Path(__file__).resolve().parent
    for item in items:
        if "slow" in item.keywords and here in Path(str(item.fspath)).resolve().parents:
            item.add_marker(skip)


@pytest.fixture(scope="session")
def base_image() -> str:
    """The locally built systemd Debian image; built with scripts/build-base-image.sh when missing (~55 s)."""
    if not shutil.which("podman"):
        pytest.skip("podman is not installed (make system installs it)")
    subprocess.run(
        [str(REPO / "scripts" / "build-base-image.sh"), BASE_IMAGE, BASE_PACKAGES, "systemd"],
        check=True,
        timeout=900,
    )
    return BASE_IMAGE


@pytest.fixture(scope="session")
def preprovisioned_image() -> str:
    """The pre-provisioned host image of the scenario preprovisioned (no systemd, packages installed; ~40 s)."""
    if not shutil.which("podman"):
        pytest.skip("podman is not installed (make system installs it)")
    subprocess.run(
        [str(Path(__file__).resolve().parent / "preprovisioned-image.sh"), PREPROVISIONED_IMAGE],
        check=True,
        timeout=900,
    )
    return PREPROVISIONED_IMAGE
