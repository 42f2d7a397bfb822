"""The generated rule files read as data by the runners: alerts, thresholds, durations, the P99 drill rewrite."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from ailab.observability.generate import dump_yaml, rule_files
from workloads.observability import rulefiles


def test_the_committed_temperature_rule_is_85_degrees_for_a_minute() -> None:
    rule = rulefiles.alert("GPUTemperatureHigh")
    assert rulefiles.thresholds(rule["expr"]) == [85.0, 85.0]
    assert rulefiles.duration_s(rule["for"]) == 60.0


def test_unknown_alert_names_the_file() -> None:
    with pytest.raises(KeyError, match=r"alerts\.yaml: no alert 'Nope'"):
        rulefiles.alert("Nope")


@pytest.mark.parametrize("text, s", [("90s", 90), ("5m", 300), ("1h30m", 5400), ("0m", 0), ("250ms", 0.25)])
def test_durations(text: str, s: float) -> None:
    assert rulefiles.duration_s(text) == s


@pytest.mark.parametrize("bad", ["", "5", "5 m", "m5", "5x"])
def test_bad_duration_is_named(bad: str) -> None:
    with pytest.raises(ValueError, match=rf"duration {bad!r}: expected"):
        rulefiles.duration_s(bad)


def test_p99_threshold_rewrite_keeps_the_generators_critical_ratio(tmp_path: Path) -> None:
    f = tmp_path / "alerts.yaml"
    f.write_text(dump_yaml(rule_files(60.0)["alerts.yaml"]))
    assert rulefiles.set_p99_threshold(f, 0.012) == {"TritonP99LatencyHigh": 0.012, "TritonP99LatencyCritical": 0.024}
    want = rule_files(0.012)["alerts.yaml"]  # what the generator writes for that threshold
    got = yaml.safe_load(f.read_text())
    exprs = {r["alert"]: r["expr"] for g in got["groups"] for r in g["rules"]}
    assert exprs == {r["alert"]: r["expr"] for g in want["groups"] for r in g["rules"]}
