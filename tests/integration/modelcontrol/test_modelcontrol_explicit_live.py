"""Model control on a real tritonserver 2.51, each runner starting its own server through the real local platform:
explicit load / reload with an override / unload, and version policies. Nothing is mocked; timing is never asserted."""

from __future__ import annotations

import pytest

from ailab.contract import Output
from ailab.runner import local_context as context
from workloads.modelcontrol.experiments.control_modes import ExplicitParams, explicit_control
from workloads.modelcontrol.experiments.policies import PolicyParams, version_policies

pytestmark = pytest.mark.integration


def rows(out: Output, table: str) -> list[dict]:
    t = next(t for t in out.tables if t.name == table)
    return [dict(zip([c.name for c in t.columns], r, strict=True)) for r in t.rows]


def test_explicit_load_reload_unload(tmp_path):
    out = explicit_control(context("d25.e2", tmp_path), ExplicitParams(repeats=1, reload_instances=2))
    steps = rows(out, "steps")
    by = {r["action"]: r for r in steps}
    assert by["start (nothing loaded)"]["a request then gets"].startswith("error:")
    assert by["load"]["state after"] == "v1 READY" and by["load"]["a request then gets"] == "ok (version 1)"
    reload = by["reload, override instance_group count 2"]
    assert reload["instances (server config)"] == "2" and reload["a request then gets"] == "ok (version 1)"
    assert by["unload"]["a request then gets"].startswith("error:") and "READY" not in by["unload"]["state after"]
    assert "failed to load 'nope'" in by["load 'nope' (not in the repository)"]["a request then gets"]


def test_version_policies_load_the_versions_they_name(tmp_path):
    out = version_policies(
        context("d34.e1", tmp_path), PolicyParams(policies=["latest 1", "specific 1", "all"], probe_size=64)
    )
    by = {r["version_policy"]: r for r in rows(out, "policies")}
    assert by["latest 1"]["READY"] == "[2]" and by["latest 1"]["request v1"].startswith("error")
    assert by["specific 1"]["READY"] == "[1]" and by["specific 1"]["no version named -> served by"] == "v1"
    assert by["all"]["READY"] == "[1, 2]" and by["all"]["request v1"] == by["all"]["request v2"] == "ok"
    assert 50 < by["all"]["top-1 agreement v1/v2"] < 100  # v2 is a different, still sensible network
