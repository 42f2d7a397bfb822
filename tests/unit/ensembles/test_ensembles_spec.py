"""Ensemble specs -> Triton's ModelConfig, and every ensemble Triton would refuse refused before anything is written,
naming the field. Pure: no server (tests/integration/ensembles runs the real one)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
from google.protobuf import text_format
from tritonclient.grpc import model_config_pb2 as mc

from workloads.ensembles.pipeline import IMAGE, pipeline_specs
from workloads.serving.modelspec import EnsembleStep, ModelSpec, SpecError, TensorSpec, to_config, validate_ensembles
from workloads.serving.repository import build_repository, read_config


def by_name(specs: list[ModelSpec]) -> dict[str, ModelSpec]:
    return {s.name: s for s in specs}


def with_pipeline(steps: tuple[EnsembleStep, ...], **kw: object) -> list[ModelSpec]:
    """The pipeline's models with the `pipeline` ensemble's steps (and fields) replaced."""
    specs = pipeline_specs(post=False, fused=False)
    return [dataclasses.replace(s, ensemble=steps, **kw) if s.name == "pipeline" else s for s in specs]  # type: ignore[arg-type]


GOOD = (
    EnsembleStep("normalize", {"image": "image"}, {"pixels": "pixels"}),
    EnsembleStep("mlp", {"input": "pixels"}, {"logits": "logits"}),
    EnsembleStep("softmax", {"logits": "logits"}, {"probs": "probs"}),
)


def test_ensemble_config_is_platform_ensemble_with_its_steps():
    cfg = to_config(by_name(pipeline_specs())["pipeline"])
    assert cfg.platform == "ensemble" and not cfg.backend
    assert not cfg.instance_group and not cfg.HasField("dynamic_batching") and not cfg.parameters
    steps = cfg.ensemble_scheduling.step
    assert [s.model_name for s in steps] == ["normalize", "mlp", "softmax"]
    assert dict(steps[1].input_map) == {"input": "pixels"} and dict(steps[1].output_map) == {"logits": "logits"}
    assert all(s.model_version == -1 for s in steps)
    assert cfg.input[0].data_type == mc.TYPE_UINT8 and list(cfg.input[0].dims) == [8, 8]
    assert text_format.Parse(text_format.MessageToString(cfg), mc.ModelConfig()) == cfg


def test_repository_has_an_empty_version_dir_for_the_ensemble_and_step_models_get_their_model_py(lab_tmp: Path):
    out = build_repository(pipeline_specs(), lab_tmp / "repo", n_gpus=0)
    assert read_config(out / "pipeline" / "config.pbtxt").platform == "ensemble"
    assert list((out / "pipeline" / "1").iterdir()) == []
    assert "op" in (out / "normalize" / "1" / "model.py").read_text()  # the steps backend, not the ONNX one
    assert (out / "fused" / "1" / "model.onnx").is_file()
    assert read_config(out / "normalize" / "config.pbtxt").parameters["op"].string_value == "normalize"


def test_the_pipeline_validates():
    validate_ensembles(pipeline_specs())


BAD = {
    "unknown_model": (
        (EnsembleStep("normalise", {"image": "image"}, {"pixels": "pixels"}), *GOOD[1:]),
        ["step[0].model_name 'normalise'", "no such model", "normalize"],
    ),
    "unknown_input": (
        (GOOD[0], EnsembleStep("mlp", {"pixels": "pixels"}, {"logits": "logits"}), GOOD[2]),
        ["step[1].input_map key 'pixels'", "has no input 'pixels'", "['input']"],
    ),
    "unknown_output": (
        (*GOOD[:2], EnsembleStep("softmax", {"logits": "logits"}, {"prob": "probs"})),
        ["step[2].output_map key 'prob'", "has no output 'prob'"],
    ),
    "dtype_mismatch": (  # raw uint8 image straight into the MLP, which takes float32
        (GOOD[0], EnsembleStep("mlp", {"input": "image"}, {"logits": "logits"}), GOOD[2]),
        ["step[1].input_map 'input' <- 'image'", "data_type mismatch", "TYPE_UINT8", "TYPE_FP32"],
    ),
    "shape_mismatch": (  # softmax fed the 28x28 pixels instead of logits
        (*GOOD[:2], EnsembleStep("softmax", {"logits": "pixels"}, {"probs": "probs"})),
        ["step[2].input_map 'logits' <- 'pixels'", "shape mismatch", "[-1, 1, 28, 28]", "[-1, 10]"],
    ),
    "never_produced": (
        (GOOD[0], EnsembleStep("mlp", {"input": "pixel"}, {"logits": "logits"}), GOOD[2]),
        ["step[1].input_map", "['pixel'] are never produced"],
    ),
    "produced_twice": (
        (*GOOD, EnsembleStep("softmax", {"logits": "logits"}, {"probs": "probs"})),
        ["step[3].output_map 'probs' -> 'probs'", "already produced by step[2]"],
    ),
    "unmapped_input": (
        (GOOD[0], EnsembleStep("mlp", {}, {"logits": "logits"}), GOOD[2]),
        ["step[1].input_map", "at least one input"],
    ),
    "output_not_produced": (
        GOOD[:2],
        ["outputs 'probs'", "no ensemble_scheduling step's output_map produces it"],
    ),
    "self_reference": (
        (*GOOD, EnsembleStep("pipeline", {"image": "image"}, {"probs": "p2"})),
        ["step[3].model_name 'pipeline'", "no such model"],
    ),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_ensembles_triton_would_refuse_are_refused_naming_the_field(lab_tmp: Path, case: str):
    steps, words = BAD[case]
    out = lab_tmp / "repo"
    with pytest.raises(SpecError) as exc:
        build_repository(with_pipeline(steps), out, n_gpus=0)
    assert "model 'pipeline'" in str(exc.value)
    for w in words:
        assert w in str(exc.value), str(exc.value)
    assert not out.exists()  # nothing written, so no server can start on it


def test_a_cycle_is_refused():
    a = ModelSpec("a", (TensorSpec("x", "FP32", (4,)),), (TensorSpec("y", "FP32", (4,)),), source="softmax")
    ens = ModelSpec(
        "loop",
        (TensorSpec("in", "FP32", (4,)),),
        (TensorSpec("out", "FP32", (4,)),),
        ensemble=(EnsembleStep("a", {"x": "t2"}, {"y": "t1"}), EnsembleStep("a", {"x": "t1"}, {"y": "t2"})),
    )
    with pytest.raises(SpecError, match="the steps form a cycle"):
        validate_ensembles([a, ens])


def test_output_dtype_and_batch_size_are_checked():
    specs = with_pipeline(GOOD, outputs=(TensorSpec("probs", "FP16", (10,)),))
    with pytest.raises(SpecError, match=r"outputs 'probs' data_type TYPE_FP16: mismatch"):
        validate_ensembles(specs)
    specs = with_pipeline(GOOD, max_batch_size=128)
    with pytest.raises(SpecError, match=r"max_batch_size 64 is below the ensemble's 128"):
        validate_ensembles(specs)


def test_unused_ensemble_input_and_dynamic_batching_on_an_ensemble_are_refused(lab_tmp: Path):
    extra = (IMAGE, TensorSpec("unused", "FP32", (1,)))
    with pytest.raises(SpecError, match=r"inputs \['unused'\]: not read by any"):
        validate_ensembles(with_pipeline(GOOD, inputs=extra))
    from workloads.serving.modelspec import DynamicBatching

    with pytest.raises(SpecError, match="dynamic_batching: an ensemble is scheduled by ensemble_scheduling"):
        build_repository(with_pipeline(GOOD, dynamic_batching=DynamicBatching()), lab_tmp / "r", n_gpus=0)


def test_step_version_must_exist():
    steps = (GOOD[0], dataclasses.replace(GOOD[1], model_version=7), GOOD[2])
    with pytest.raises(SpecError, match=r"step\[1\].model_version 7: model 'mlp' has versions \[1\]"):
        validate_ensembles(with_pipeline(steps))
