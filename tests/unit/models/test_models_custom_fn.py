"""d03.e4: a custom autograd.Function in place of a ReLU; every export/run outcome is captured, not raised."""

from __future__ import annotations

from pathlib import Path

import pytest

from workloads.models import custom_fn, mlp


def test_python_op_export_failure_is_recorded_and_explained(trained: mlp.Trained, tmp_path: Path) -> None:
    a = custom_fn.attempt(trained.model, "aten_body", "torchscript_no_inlining", tmp_path)
    assert not a.export_ok and a.run_ok is None
    assert "Couldn't export Python operator AtenBodyReLU" in a.error
    assert "symbolic" in a.explanation


def test_numpy_body_fails_the_torchscript_exporter(trained: mlp.Trained, tmp_path: Path) -> None:
    a = custom_fn.attempt(trained.model, "numpy_body", "torchscript", tmp_path)
    assert not a.export_ok
    assert "aten::lift_fresh" in a.error and "numpy" in a.explanation
    assert "Unable to inline PythonOp" in a.exporter_warning  # captured from the exporter's C++ stderr


def test_custom_domain_op_exports_but_ort_cannot_load_it(trained: mlp.Trained, tmp_path: Path) -> None:
    a = custom_fn.attempt(trained.model, "symbolic_custom_domain", "torchscript", tmp_path)
    assert a.export_ok and a.run_ok is False
    assert "ailab:CustomRelu" in a.ops
    assert "is not a registered function/op" in a.error
    assert str(tmp_path) not in a.error  # paths are shortened to the file name


@pytest.mark.parametrize("variant", ["aten_body", "symbolic_onnx_relu"])
def test_mappable_functions_export_and_match_torch(trained: mlp.Trained, tmp_path: Path, variant: str) -> None:
    a = custom_fn.attempt(trained.model, variant, "torchscript", tmp_path)
    assert a.export_ok and a.run_ok and a.error == ""
    assert a.max_abs_diff is not None and a.max_abs_diff < 1e-4


def test_unknown_variant_or_exporter_is_rejected(trained: mlp.Trained, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"variant 'gelu': allowed aten_body, numpy_body"):
        custom_fn.attempt(trained.model, "gelu", "torchscript", tmp_path)
    with pytest.raises(ValueError, match=r"exporter 'tf': allowed torchscript"):
        custom_fn.attempt(trained.model, "aten_body", "tf", tmp_path)
