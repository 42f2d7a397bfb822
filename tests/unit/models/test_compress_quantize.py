"""Day-61 INT8: every quantized variant's logits stay close to the FP32 CNN's on held-out digits."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from workloads.models import compress, quantize
from workloads.models import compress_bench as bench


@pytest.fixture(scope="module")
def fp32() -> bench.Variant:
    return bench.torch_variant("FP32", compress.teacher())


@pytest.fixture(scope="module")
def fp32_onnx(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return quantize.export_onnx(compress.teacher(), tmp_path_factory.mktemp("d61") / "cnn.onnx")


def _calib() -> np.ndarray:
    return compress.split8().x_train[:128]


def _assert_close(v: bench.Variant, ref: bench.Variant, rel_tol: float) -> None:
    """Argmax agrees on >= 97 % of held-out digits and the worst logit error is a small fraction of the logit range."""
    x = compress.split8().x_test
    got, want = v.logits(x), ref.logits(x)
    assert got.shape == want.shape
    assert (got.argmax(1) == want.argmax(1)).mean() >= 0.97
    assert np.abs(got - want).max() <= rel_tol * np.ptp(want)


def test_onnx_export_matches_torch(fp32: bench.Variant, fp32_onnx: Path) -> None:
    _assert_close(bench.ort_variant("FP32", fp32_onnx), fp32, rel_tol=1e-5)


def test_torch_dynamic_int8_is_close_to_fp32(fp32: bench.Variant) -> None:
    q = quantize.torch_dynamic(compress.teacher())
    assert "Linear" in type(q.fc1).__name__ and type(q.conv1).__name__ == "Conv2d"  # convolutions stay FP32
    _assert_close(bench.torch_variant("dyn", q), fp32, rel_tol=0.05)


def test_torch_static_int8_is_close_to_fp32_and_smaller(fp32: bench.Variant) -> None:
    q = quantize.torch_static(compress.teacher(), _calib(), "x86")
    v = bench.torch_variant("static", q)
    _assert_close(v, fp32, rel_tol=0.15)
    assert v.size_bytes < fp32.size_bytes / 3  # int8 weights: about a quarter of the float32 bytes


def test_ort_int8_models_are_close_to_fp32(fp32: bench.Variant, fp32_onnx: Path, tmp_path: Path) -> None:
    ref = bench.ort_variant("FP32", fp32_onnx)
    dyn = bench.ort_variant("dyn", quantize.ort_dynamic(fp32_onnx, tmp_path / "dyn.onnx"))
    qdq = bench.ort_variant("qdq", quantize.ort_static(fp32_onnx, tmp_path / "qdq.onnx", _calib()))
    _assert_close(dyn, ref, rel_tol=0.05)
    _assert_close(qdq, ref, rel_tol=0.15)
    assert max(dyn.size_bytes, qdq.size_bytes) < ref.size_bytes / 3


def test_unknown_backend_is_refused_with_the_available_ones() -> None:
    with pytest.raises(ValueError, match=r"params.backend 'tpu': allowed \(available in this torch build\) .*x86"):
        quantize.torch_static(compress.teacher(), _calib(), "tpu")
