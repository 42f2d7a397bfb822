"""The ensemble pipeline as typed specs: normalize -> mlp -> softmax (and a top-k post-processing step), the same
work in one model, and the numpy reference every server answer is checked against.

    specs = pipeline_specs()                  # build_repository / harness.serve take them as they are
    x = raw_images(4)                         # uint8 [4, 8, 8], values 0..16 (scikit-learn's digits)
    reference(x)                              # softmax(mlp(normalize(x))) computed here with onnxruntime
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

import numpy as np

from workloads.serving.modelspec import DynamicBatching, EnsembleStep, InstanceGroup, ModelSpec, TensorSpec
from workloads.serving.repository import Source, mlp_spec, model_cache, register_source

STEPS_PY = Path(__file__).with_name("backend") / "steps.py"
K = 3  # classes the top-k step returns

IMAGE = TensorSpec("image", "TYPE_UINT8", (8, 8))
PIXELS = TensorSpec("pixels", "TYPE_FP32", (1, 28, 28))
LOGITS = TensorSpec("logits", "TYPE_FP32", (10,))
PROBS = TensorSpec("probs", "TYPE_FP32", (10,))
LABELS = TensorSpec("labels", "TYPE_INT64", (K,))
SCORES = TensorSpec("scores", "TYPE_FP32", (K,))


def _no_files(_runtime: str, _cache: Path) -> dict[str, Path]:
    return {}


def _mlp_onnx(_runtime: str, cache_dir: Path) -> dict[str, Path]:
    from workloads.models.mlp import export_default_model

    return {"model.onnx": export_default_model(cache_dir)}


SOURCES = {
    "normalize": Source({"image": (-1, 8, 8), "pixels": (-1, 1, 28, 28)}, _no_files, STEPS_PY),
    "softmax": Source({"logits": (-1, 10), "probs": (-1, 10)}, _no_files, STEPS_PY),
    "topk": Source({"probs": (-1, 10), "labels": (-1, K), "scores": (-1, K)}, _no_files, STEPS_PY),
    "fused": Source({"image": (-1, 8, 8), "probs": (-1, 10)}, _mlp_onnx, STEPS_PY),
}
for _name, _src in SOURCES.items():
    register_source(_name, _src)


def _step(
    name: str, op: str, inputs: tuple[TensorSpec, ...], outputs: tuple[TensorSpec, ...], **kw: object
) -> ModelSpec:
    return ModelSpec(
        name=name,
        inputs=inputs,
        outputs=outputs,
        source=op,
        parameters={"op": op, "k": str(K)},
        **kw,  # type: ignore[arg-type]
    )


def pipeline_specs(
    instances: int = 1, batching: bool = False, post: bool = True, fused: bool = True, max_batch_size: int = 64
) -> list[ModelSpec]:
    """normalize, mlp, softmax (+ topk) as models, the ensemble `pipeline` (image -> probs), `pipeline_post`
    (image -> labels, scores, with the python top-k step) and `fused` (image -> probs in one model)."""
    db = DynamicBatching(max_queue_delay_us=0) if batching else None
    common = {
        "instance_groups": (InstanceGroup(count=instances),),
        "dynamic_batching": db,
        "max_batch_size": max_batch_size,
    }
    specs = [
        _step("normalize", "normalize", (IMAGE,), (PIXELS,), **common),
        mlp_spec("mlp", **common),
        _step("softmax", "softmax", (LOGITS,), (PROBS,), **common),
        ModelSpec(
            name="pipeline",
            inputs=(IMAGE,),
            outputs=(PROBS,),
            max_batch_size=max_batch_size,
            ensemble=(
                EnsembleStep("normalize", {"image": "image"}, {"pixels": "pixels"}),
                EnsembleStep("mlp", {"input": "pixels"}, {"logits": "logits"}),
                EnsembleStep("softmax", {"logits": "logits"}, {"probs": "probs"}),
            ),
        ),
    ]
    if post:
        specs.append(_step("topk", "topk", (PROBS,), (LABELS, SCORES), **common))
        specs.append(
            ModelSpec(
                name="pipeline_post",
                inputs=(IMAGE,),
                outputs=(LABELS, SCORES),
                max_batch_size=max_batch_size,
                ensemble=(
                    EnsembleStep("normalize", {"image": "image"}, {"pixels": "pixels"}),
                    EnsembleStep("mlp", {"input": "pixels"}, {"logits": "logits"}),
                    EnsembleStep("softmax", {"logits": "logits"}, {"probs": "probs"}),
                    EnsembleStep("topk", {"probs": "probs"}, {"labels": "labels", "scores": "scores"}),
                ),
            )
        )
    if fused:
        specs.append(_step("fused", "fused", (IMAGE,), (PROBS,), **common))
    return specs


def raw_images(n: int, seed: int = 0) -> np.ndarray:
    """n of scikit-learn's digits as a sensor gives them: uint8 [n, 8, 8] with values 0..16 (not preprocessed)."""
    from workloads.models.data import load_digits

    images, _ = load_digits()
    rng = np.random.default_rng(seed)
    return images[rng.choice(len(images), size=n, replace=n > len(images))].astype(np.uint8)


@cache
def _session() -> object:
    import onnxruntime as ort

    from workloads.models.mlp import export_default_model

    return ort.InferenceSession(str(export_default_model(model_cache())), providers=["CPUExecutionProvider"])


def softmax(logits: np.ndarray) -> np.ndarray:
    z = logits - logits.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


def reference(images: np.ndarray) -> np.ndarray:
    """softmax(mlp(normalize(images))) computed in this process: the lab's training preprocessing
    (workloads.models.data.preprocess), the same ONNX file run by onnxruntime, numpy softmax. float32 [n, 10]."""
    from workloads.models.data import preprocess

    (logits,) = _session().run(None, {"input": preprocess(images)})  # type: ignore[attr-defined]
    return softmax(logits.astype(np.float64)).astype(np.float32)
