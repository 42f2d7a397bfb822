"""INT8 calibration sets: how many samples, drawn how, and the calibrators both paths name.

The same sampling feeds TensorRT's `IInt8Calibrator` (the TensorRT path) and ONNX Runtime's `CalibrationDataReader`
(the substitute), so a calibration set of 500 means the same 500 samples in both.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

# TensorRT's calibrators and ONNX Runtime's CalibrationMethod, matched by what they compute
CALIBRATORS = {
    "minmax": {"tensorrt": "IInt8MinMaxCalibrator", "onnxruntime": "MinMax"},
    "entropy": {"tensorrt": "IInt8EntropyCalibrator2", "onnxruntime": "Entropy"},
    "percentile": {"tensorrt": "IInt8LegacyCalibrator (quantile)", "onnxruntime": "Percentile"},
}
GRANULARITIES = ("per_tensor", "per_channel")


class CalibrationError(ValueError):
    """Bad calibration settings; the message names the field and what is allowed."""


def check_calibrator(name: str) -> str:
    if name not in CALIBRATORS:
        raise CalibrationError(f"field calibrator = {name!r}: allowed {', '.join(CALIBRATORS)}")
    return name


def sample_indices(n_available: int, size: int, seed: int = 0) -> np.ndarray:
    """`size` distinct indices out of `n_available`, drawn without replacement (sorted)."""
    if size < 1:
        raise CalibrationError(f"field calibration_size = {size}: must be >= 1")
    if size > n_available:
        raise CalibrationError(
            f"field calibration_size = {size}: larger than the {n_available} samples available for calibration"
        )
    return np.sort(np.random.default_rng(seed).choice(n_available, size=size, replace=False))


def calibration_set(x: np.ndarray, size: int, seed: int = 0) -> np.ndarray:
    """`size` rows of `x` (float32), the same ones for the same seed."""
    return np.ascontiguousarray(x[sample_indices(len(x), size, seed)], dtype=np.float32)


def batches(x: np.ndarray, batch_size: int) -> Iterator[np.ndarray]:
    """Consecutive batches of `x` (the last one may be short), as calibrators read them."""
    if batch_size < 1:
        raise CalibrationError(f"field batch_size = {batch_size}: must be >= 1")
    for i in range(0, len(x), batch_size):
        yield x[i : i + batch_size]
