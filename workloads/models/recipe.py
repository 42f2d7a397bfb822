"""The Day-3 MLP's training recipe and its exported file, without torch: which ONNX file in a cache is reusable.

Serving experiments ask for the model file on every run; when the cached export is valid they need neither
training nor torch (importing it costs about 3 s of a quick run). Training and export live in mlp.py, which this
module imports only when the cache has no valid file.
"""

from __future__ import annotations

import hashlib
from importlib.metadata import version
from pathlib import Path

from workloads.models.data import IMAGE_SIZE, INPUT_NAME, NUM_CLASSES, OUTPUT_NAME, SEED, TEST_FRACTION

# Training recipe; its hash is stored in the ONNX metadata so a cached file from another recipe is not reused.
HIDDEN = (256, 128)
EPOCHS = 15
BATCH_SIZE = 64
LEARNING_RATE = 1e-3
RECIPE = f"v2 hidden={HIDDEN} epochs={EPOCHS} bs={BATCH_SIZE} lr={LEARNING_RATE} seed={SEED} split={TEST_FRACTION}"
RECIPE_KEY = "ailab.recipe"


def recipe_hash(opset: int) -> str:
    """The recipe, opset and torch version (the exporter's) as a 16-hex-digit key; torch's version is read from its
    installed metadata, the same string as torch.__version__, without importing it."""
    return hashlib.sha256(f"{RECIPE} opset={opset} torch={version('torch')}".encode()).hexdigest()[:16]


def is_valid_export(path: Path, opset: int) -> bool:
    """True when path holds a checked ONNX model of this recipe and opset with the input/output contract."""
    import onnx

    try:
        proto = onnx.load(str(path))
        onnx.checker.check_model(proto)
    except Exception:  # noqa: BLE001 - missing, truncated or invalid: not reusable
        return False
    meta = {p.key: p.value for p in proto.metadata_props}
    domain_opset = {o.domain: o.version for o in proto.opset_import}
    if meta.get(RECIPE_KEY) != recipe_hash(opset) or domain_opset.get("", domain_opset.get("ai.onnx")) != opset:
        return False
    (inp,), (out,) = proto.graph.input, proto.graph.output
    in_dims = [d.dim_param or d.dim_value for d in inp.type.tensor_type.shape.dim]
    out_dims = [d.dim_param or d.dim_value for d in out.type.tensor_type.shape.dim]
    f32 = onnx.TensorProto.FLOAT
    return (
        (inp.name, out.name) == (INPUT_NAME, OUTPUT_NAME)
        and inp.type.tensor_type.elem_type == f32
        and out.type.tensor_type.elem_type == f32
        and in_dims == ["batch", 1, IMAGE_SIZE, IMAGE_SIZE]
        and out_dims == ["batch", NUM_CLASSES]
    )


def export_default_model(out_dir: Path, opset: int = 17) -> Path:
    """out_dir/mlp.onnx of this recipe: reused when valid, else trained (seed 0) and written; returns its path."""
    path = Path(out_dir) / "mlp.onnx"
    if is_valid_export(path, opset):
        return path
    from workloads.models import mlp  # torch: only to train

    trained = mlp.default_trained()
    meta = {
        RECIPE_KEY: recipe_hash(opset),
        "ailab.recipe_text": RECIPE,
        "ailab.test_accuracy": f"{trained.test_accuracy:.4f}",
        "ailab.preprocess": "sklearn digits 8x8 /16 -> bilinear 28x28, values 0..1",
    }
    return mlp.export_onnx(trained.model, path, opset=opset, metadata=meta)
