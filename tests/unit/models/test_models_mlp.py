"""The Day-3 MLP: training accuracy, the export contract other areas build on, and dynamic-batch ONNX runs."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch

from workloads.models import mlp


def test_training_reaches_a_sane_accuracy(trained: mlp.Trained) -> None:
    # a correctness check of data, preprocessing and training, not a benchmark: a broken pipeline sits near 10 %
    assert trained.test_accuracy >= 0.90


def test_training_is_deterministic_for_a_seed() -> None:
    one, two = mlp.train(seed=5, epochs=1), mlp.train(seed=5, epochs=1)
    for a, b in zip(one.model.state_dict().values(), two.model.state_dict().values(), strict=True):
        torch.testing.assert_close(a, b, rtol=0, atol=0)
    other = mlp.train(seed=6, epochs=1)
    assert not torch.equal(one.model.fc1.weight, other.model.fc1.weight)


def test_mlp_module_reexports_the_data_contract() -> None:
    from workloads.models import data

    assert mlp.sample_inputs is data.sample_inputs and mlp.preprocess is data.preprocess


def test_default_export_has_the_shared_contract(default_model: Path) -> None:
    assert default_model.name == "mlp.onnx"
    proto = onnx.load(str(default_model))
    onnx.checker.check_model(proto)
    (inp,), (out,) = proto.graph.input, proto.graph.output
    assert (inp.name, out.name) == ("input", "logits")
    assert inp.type.tensor_type.elem_type == onnx.TensorProto.FLOAT
    assert [d.dim_param or d.dim_value for d in inp.type.tensor_type.shape.dim] == ["batch", 1, 28, 28]
    assert [d.dim_param or d.dim_value for d in out.type.tensor_type.shape.dim] == ["batch", 10]
    assert {o.version for o in proto.opset_import if o.domain in ("", "ai.onnx")} == {17}


def test_default_export_is_reused_when_valid(default_model: Path) -> None:
    before = default_model.stat().st_mtime_ns
    assert mlp.export_default_model(default_model.parent) == default_model
    assert default_model.stat().st_mtime_ns == before


def test_invalid_or_foreign_files_are_not_reused(tmp_path: Path, default_model: Path, trained: mlp.Trained) -> None:
    assert mlp.is_valid_export(default_model, 17)
    assert not mlp.is_valid_export(default_model, 13)  # another opset is another file
    (tmp_path / "garbage.onnx").write_bytes(b"not an onnx model")
    assert not mlp.is_valid_export(tmp_path / "garbage.onnx", 17)
    assert not mlp.is_valid_export(tmp_path / "absent.onnx", 17)
    # a valid model without this recipe's hash (another recipe, or someone else's file)
    foreign = mlp.export_onnx(trained.model, tmp_path / "foreign.onnx", opset=17)
    assert not mlp.is_valid_export(foreign, 17)
    # and the replacement path: a broken mlp.onnx is overwritten by a valid export
    (tmp_path / "mlp.onnx").write_bytes(b"truncated")
    assert mlp.is_valid_export(mlp.export_default_model(tmp_path), 17)


@pytest.mark.parametrize("batch", [1, 8, 32])
def test_dynamic_batch_matches_torch(trained: mlp.Trained, tmp_path: Path, batch: int) -> None:
    path = mlp.export_onnx(trained.model, tmp_path / "m.onnx", opset=17)
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    x, _ = mlp.sample_inputs(batch)
    got = sess.run(None, {"input": x})[0]
    with torch.no_grad():
        want = trained.model(torch.from_numpy(x)).numpy()
    assert got.shape == (batch, 10)
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("opset", [13, 17])
def test_both_opsets_export_and_classify(trained: mlp.Trained, tmp_path: Path, opset: int) -> None:
    path = mlp.export_onnx(trained.model, tmp_path / f"m{opset}.onnx", opset=opset)
    proto = onnx.load(str(path))
    assert {o.version for o in proto.opset_import if o.domain in ("", "ai.onnx")} == {opset}
    split = mlp.digits_split()
    logits = ort.InferenceSession(str(path)).run(None, {"input": split.x_test})[0]
    assert float((logits.argmax(1) == split.y_test).mean()) == pytest.approx(trained.test_accuracy)
