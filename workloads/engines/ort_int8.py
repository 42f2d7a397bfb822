"""INT8 post-training quantisation with ONNX Runtime's static quantiser (the stand-in for TensorRT's calibrators).

The digits MLP trained here is exported to ONNX (FP32), calibrated on a sampled subset of the training data with
MinMax, Entropy or Percentile, per-tensor or per-channel weights, QDQ format with signed INT8 activations and
weights, and run by ONNX Runtime's CPU provider. Accuracy is on the held-out digits; latency on this CPU.
"""

from __future__ import annotations

import os
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from workloads.engines.calibration import CALIBRATORS, batches, calibration_set, check_calibrator

INPUT = "input"


@dataclass
class QuantRow:
    calibrator: str  # fp32 for the unquantised baseline
    granularity: str
    calibration_size: int
    accuracy_pct: float
    top1_agree_pct: float
    calibrate_s: float
    model_kib: float
    p50_ms: float
    p95_ms: float
    speedup_vs_fp32: float = 0.0

    def as_dict(self) -> dict:
        return asdict(self)


class _Reader:
    """ONNX Runtime's CalibrationDataReader protocol over calibration batches."""

    def __init__(self, x: np.ndarray, batch_size: int) -> None:
        self._it = iter(list(batches(x, batch_size)))

    def get_next(self) -> dict[str, np.ndarray] | None:
        b = next(self._it, None)
        return None if b is None else {INPUT: b}


def quantize(fp32: Path, out: Path, calib_x: np.ndarray, calibrator: str, per_channel: bool) -> float:
    """Write the INT8 QDQ model calibrated on `calib_x`; returns seconds spent calibrating and quantising."""
    from onnxruntime.quantization import (
        CalibrationMethod,
        QuantFormat,
        QuantType,
        quantize_static,
    )

    check_calibrator(calibrator)
    method = getattr(CalibrationMethod, CALIBRATORS[calibrator]["onnxruntime"])
    t0 = time.perf_counter()
    quantize_static(
        str(fp32),
        str(out),
        _Reader(calib_x, 50),
        quant_format=QuantFormat.QDQ,
        per_channel=per_channel,
        activation_type=QuantType.QInt8,
        weight_type=QuantType.QInt8,
        calibrate_method=method,
        extra_options={"CalibPercentile": 99.99} if calibrator == "percentile" else None,
    )
    return time.perf_counter() - t0


def session(path: Path, threads: int):
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.intra_op_num_threads = threads
    so.inter_op_num_threads = 1
    return ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])


def _latency(sess: object, x: np.ndarray, iters: int) -> tuple[float, float]:
    for _ in range(3):
        sess.run(None, {INPUT: x})  # type: ignore[attr-defined]
    ms = []
    for _ in range(iters):
        t0 = time.perf_counter()
        sess.run(None, {INPUT: x})  # type: ignore[attr-defined]
        ms.append((time.perf_counter() - t0) * 1e3)
    p50, p95 = np.percentile(ms, [50, 95], method="inverted_cdf")
    return float(p50), float(p95)


def study(
    fp32: Path,
    workdir: Path,
    x_train: np.ndarray,
    x_test: np.ndarray,
    y_test: np.ndarray,
    configs: list[tuple[str, str, int]],
    batch: int,
    iters: int,
    threads: int = 1,
) -> list[QuantRow]:
    """FP32 baseline row, then one row per (calibrator, granularity, calibration size); ratios from this run."""
    base = session(fp32, threads)
    ref = base.run(None, {INPUT: x_test})[0]
    xb = np.resize(x_test, (batch, x_test.shape[1])).astype(np.float32)
    p50, p95 = _latency(base, xb, iters)
    rows = [
        QuantRow(
            "fp32",
            "-",
            0,
            float((ref.argmax(1) == y_test).mean() * 100),
            100.0,
            0.0,
            fp32.stat().st_size / 1024,
            p50,
            p95,
        )
    ]
    for calibrator, granularity, size in configs:
        out = workdir / f"int8_{calibrator}_{granularity}_{size}.onnx"
        secs = quantize(fp32, out, calibration_set(x_train, size, seed=size), calibrator, granularity == "per_channel")
        s = session(out, threads)
        y = s.run(None, {INPUT: x_test})[0]
        p50, p95 = _latency(s, xb, iters)
        rows.append(
            QuantRow(
                calibrator,
                granularity,
                size,
                float((y.argmax(1) == y_test).mean() * 100),
                float((y.argmax(1) == ref.argmax(1)).mean() * 100),
                secs,
                out.stat().st_size / 1024,
                p50,
                p95,
            )
        )
        for extra in workdir.glob("*augmented*.onnx"):
            os.remove(extra)
    for r in rows:
        r.speedup_vs_fp32 = round(rows[0].p50_ms / r.p50_ms, 3)
    return rows
