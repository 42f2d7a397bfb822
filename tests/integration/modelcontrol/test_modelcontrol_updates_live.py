"""Model updates on a real tritonserver 2.51, each runner starting its own server through the real local platform:
poll mode picking up an added and a removed version, and a hot update with rollback under load. Both run as the d25
quick runs do, with config auto-completion off (the explicit-control test in test_modelcontrol_explicit_live.py keeps
it on): the generated configs must load, reload and switch without it. Nothing is mocked; timing is never asserted."""

from __future__ import annotations

import pytest

from ailab.contract import Output
from ailab.runner import local_context as context
from workloads.modelcontrol.experiments.control_modes import PollParams, poll_pickup
from workloads.modelcontrol.experiments.hot_update import HotUpdateParams, hot_update
from workloads.serving.experiments import AUTO_COMPLETE_OFF

pytestmark = pytest.mark.integration


def rows(out: Output, table: str) -> list[dict]:
    t = next(t for t in out.tables if t.name == table)
    return [dict(zip([c.name for c in t.columns], r, strict=True)) for r in t.rows]


def test_poll_mode_picks_up_an_added_and_a_removed_version(tmp_path):
    p = PollParams(poll_secs=[1], repeats=1, timeout_s=60, auto_complete_config=False)
    out = poll_pickup(context("d25.e1", tmp_path), p)
    picks = {r["change"]: r for r in rows(out, "pickups")}
    assert picks["add v2"]["READY after"] == "[2]" and picks["add v2"]["served"] == 2
    assert picks["remove v2"]["READY after"] == "[1]" and picks["remove v2"]["served"] == 1
    assert all(isinstance(r["detected (first log line)"], float) for r in picks.values())
    # one load per change and none else: a python stub writing model.py's __pycache__/ into the polled version folder
    # made the server take it for a change and reload the model (the repository now ships the bytecode)
    log = (tmp_path / "poll1" / "state" / "logs" / "triton.log").read_text()
    assert log.count('"loading: clf:') == 3, [ln for ln in log.splitlines() if "loading: clf:" in ln]
    (start,) = [ln for ln in log.splitlines() if ln.startswith("=== lab: starting triton")]
    assert AUTO_COMPLETE_OFF in start.split()


def test_hot_update_under_load_switches_and_rolls_back(tmp_path):
    p = HotUpdateParams(mode="explicit", switches=[2, 1], qps=50, phase_s=1.0, switch_budget_s=6, scrape_s=0.5,
                        auto_complete_config=False)  # fmt: skip
    out = hot_update(context("d25.e3", tmp_path), p)
    sw = rows(out, "switches")
    assert [(r["READY after"], r["served after"]) for r in sw] == [("[2]", 2), ("[1]", 1)]
    assert all(r["requests during"] > 0 and r["error"] == "-" for r in sw)
    assert {r["version"] for r in rows(out, "metrics")} >= {1, 2}  # the scrapes saw both versions serve
    assert [r["event"] for r in rows(out, "log")].count("loading") >= 2
