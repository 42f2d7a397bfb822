"""The `lab` command line: listing, doctor, and clear errors for bad selections and options."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from ailab.cli import app

runner = CliRunner()


def test_list_json_reports_90_days_and_450_experiments() -> None:
    res = runner.invoke(app, ["list", "--json"])
    assert res.exit_code == 0, res.output
    data = json.loads(res.stdout)
    assert (data["days"], data["experiments"]) == (90, 450)
    assert sum(data["totals"].values()) == 450
    statuses = {i["status"] for i in data["items"]}
    assert any(s.startswith("planned") for s in statuses)


def test_list_filters_by_week_and_need() -> None:
    data = json.loads(runner.invoke(app, ["list", "--week", "2", "--json"]).stdout)
    assert data["experiments"] == 35 and {i["week"] for i in data["items"]} == {2}
    data = json.loads(runner.invoke(app, ["list", "--needs", "multi_gpu", "--json"]).stdout)
    assert data["items"] and all("multi_gpu" in i["needs"] for i in data["items"])


def test_list_rejects_unknown_week_and_need() -> None:
    res = runner.invoke(app, ["list", "--week", "14"])
    assert res.exit_code == 2 and "--week 14: unknown week (1–13)" in res.stderr
    res = runner.invoke(app, ["list", "--needs", "tpu"])
    assert res.exit_code == 2 and "unknown need (allowed: gpu, multi_gpu" in res.stderr


def test_doctor_json_parses_and_names_fixes() -> None:
    res = runner.invoke(app, ["doctor", "--json"])
    assert res.exit_code == 0
    checks = {c["name"]: c for c in json.loads(res.stdout)}
    assert {"python", "gpu", "tensorrt", "tritonserver", "prometheus", "container engine", "pulumi CLI"} <= set(checks)
    assert all(c["fix"] for c in checks.values() if not c["ok"])


def test_run_unknown_day_exits_2_with_closest_matches(lab_tmp: Path) -> None:
    res = runner.invoke(app, ["run", "d99"])
    assert res.exit_code == 2
    assert "unknown day 'd99' (d01–d90)" in res.stderr and "did you mean" in res.stderr
    assert not (lab_tmp / "results").exists()


def test_run_unknown_experiment_and_week(lab_tmp: Path) -> None:
    assert "unknown experiment 'd03.e6'" in runner.invoke(app, ["run", "d03.e6"]).stderr
    assert "unknown week 'week00'" in runner.invoke(app, ["run", "week00"]).stderr


def test_run_rejects_bad_device(lab_tmp: Path) -> None:
    res = runner.invoke(app, ["run", "d03", "--device", "tpu"])
    assert res.exit_code == 2 and "--device 'tpu': allowed values are cpu, cuda" in res.stderr


def test_report_unknown_target(lab_tmp: Path) -> None:
    res = runner.invoke(app, ["report", "d00"])
    assert res.exit_code == 2 and "unknown day 'd00'" in res.stderr
