"""d46's promtool-free alert evaluation agrees with the real rule file run by promtool (readings are synthetic here:
the GPU itself only exists on the GPU machine, where `lab run d46 --device cuda` feeds real NVML readings)."""

from __future__ import annotations

from pathlib import Path

import pytest

from ailab.contract import Context, Skip
from ailab.observability.experiments import d46


def test_for_durations_come_from_the_rules() -> None:
    assert d46._for_s("GPUTemperatureHigh") == 60.0
    assert d46._for_s("GPUUtilizationHigh") == 300.0


def test_python_evaluation_holds_for_the_rules_duration() -> None:
    hot = [(float(t), 86.0) for t in range(0, 70)]
    assert d46._fires(hot, 85.0, 60.0) == (True, 69.0)
    assert d46._fires(hot[:30], 85.0, 60.0) == (False, 29.0)
    assert not d46._firing_at_end([*hot, (70.0, 80.0)], 85.0, 60.0)


@pytest.mark.parametrize("temp, fires", [(86.0, "yes"), (84.0, "no")])
def test_promtool_agrees_with_python(tmp_path: Path, temp: float, fires: str) -> None:
    readings = [(float(t), temp) for t in range(0, 90)]
    row = d46._promtool_check(tmp_path, readings)
    assert row[4] == f"{fires}; promtool agrees with python", row


def test_skips_without_cuda(tmp_path: Path) -> None:
    with pytest.raises(Skip, match="needs --device cuda"):
        d46.gpu_load_observe(Context("d46.e1", {}, "cpu", True, tmp_path))
