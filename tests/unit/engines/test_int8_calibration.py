"""ONNX Runtime static INT8 calibration on the CPU, through the runner as the lab calls it."""

from __future__ import annotations

import pytest

from ailab.contract import Context
from workloads.engines.experiments.int8_calibration import CalibrationParams, int8_calibration


def test_runner_gives_fp32_row_then_one_row_per_configuration(tmp_path):
    ctx = Context(experiment_id="d36.e3", device="cpu", quick=True, workdir=tmp_path)
    p = CalibrationParams(
        calibrators=["minmax", "entropy"],
        granularities=["per_tensor", "per_channel"],
        sizes=[50],
        width=32,
        epochs=2,
        iters=3,
    )
    out = int8_calibration(ctx, p)
    rows = out.tables[0].rows
    cols = [c.name for c in out.tables[0].columns]
    assert len(rows) == 5 and rows[0][0] == "fp32"
    acc = cols.index("accuracy_pct")
    assert all(abs(r[acc] - rows[0][acc]) < 10 for r in rows[1:])  # INT8 of a small MLP stays near FP32
    assert {(r[0], r[1]) for r in rows[1:]} == {
        (c, g) for c in ("minmax", "entropy") for g in ("per_tensor", "per_channel")
    }
    assert out.substitute is not None and out.substitute.instead_of == "TensorRT"


def test_calibration_size_above_the_training_data_fails_before_work(tmp_path):
    ctx = Context(experiment_id="d36.e4", device="cpu", quick=True, workdir=tmp_path)
    with pytest.raises(ValueError, match="field calibration_size = 100000"):
        int8_calibration(ctx, CalibrationParams(calibrators=["minmax"], sizes=[100000], width=32, epochs=1))
    assert not list(tmp_path.iterdir())
