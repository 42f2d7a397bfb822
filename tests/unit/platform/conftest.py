"""Fixtures of the cluster-stack tests: every week's plans (pure) and every week's program run under mocks."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))  # pulumi_harness

from pulumi_harness import GPU_READY_HOST, Recorder, fake_probe, run_program

from ailab.platform import weeks
from ailab.platform.config import WEEKS, StackSettings
from ailab.platform.model import Plan
from ailab.platform.render import week_plans


@pytest.fixture(scope="session")
def plans_by_week() -> dict[int, tuple[StackSettings, list[Plan]]]:
    """Settings and plans of all 13 stack files, as `lab render` and `pulumi up` compute them."""
    return {w: week_plans(w) for w in WEEKS}


@pytest.fixture(scope="session")
def programs_by_week() -> dict[int, Recorder]:
    """All 13 stacks run through pulumi/__main__.py in this one process (mocked engine, GPU-ready fake host)."""
    out = {}
    with pytest.MonkeyPatch.context() as mp:
        for w in WEEKS:
            out[w] = run_program(f"week{w:02d}", weeks.stack_config(w), fake_probe(GPU_READY_HOST), mp)
    return out
