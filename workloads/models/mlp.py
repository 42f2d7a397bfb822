"""The Day-3 MLP: scikit-learn's bundled digits upsampled to 28×28, trained on CPU, exported to ONNX.

Input contract of the exported model: "input" float32 [batch, 1, 28, 28] (dynamic batch), pixel values
in [0, 1]; output "logits" float32 [batch, 10]. The curriculum asks for MNIST, which cannot be
downloaded here; the 8×8 digits that ship with scikit-learn are upsampled bilinearly to 28×28 so the
model keeps MNIST's input shape (and the serving and TensorRT days can swap in real MNIST unchanged).
Data loading and preprocessing live in data.py (numpy only); they are re-exported here.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
import time
import warnings
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F  # noqa: N812 - the usual alias

from workloads.models.data import (
    IMAGE_SIZE,
    INPUT_NAME,
    NUM_CLASSES,
    OUTPUT_NAME,
    SEED,
    TEST_FRACTION,
    Split,
    digits_split,
    preprocess,
    sample_inputs,
)

# Re-exported: the data contract lives in data.py (numpy only); importing it from here keeps the shared API.
__all__ = [
    "IMAGE_SIZE",
    "INPUT_NAME",
    "MLP",
    "NUM_CLASSES",
    "OUTPUT_NAME",
    "Split",
    "Trained",
    "default_trained",
    "digits_split",
    "export_default_model",
    "export_onnx",
    "preprocess",
    "sample_inputs",
    "train",
]

# Training recipe; its hash is stored in the ONNX metadata so a cached file from another recipe is not reused.
HIDDEN = (256, 128)
EPOCHS = 15
BATCH_SIZE = 64
LEARNING_RATE = 1e-3
RECIPE = f"v2 hidden={HIDDEN} epochs={EPOCHS} bs={BATCH_SIZE} lr={LEARNING_RATE} seed={SEED} split={TEST_FRACTION}"
RECIPE_KEY = "ailab.recipe"


class MLP(nn.Module):
    """784 → 256 → 128 → 10 with ReLU; `act1`/`act2` are separate modules so d03.e4 can swap one out."""

    def __init__(self, hidden: tuple[int, int] = HIDDEN) -> None:
        super().__init__()
        self.flatten = nn.Flatten()
        self.fc1 = nn.Linear(IMAGE_SIZE * IMAGE_SIZE, hidden[0])
        self.act1: nn.Module = nn.ReLU()
        self.fc2 = nn.Linear(hidden[0], hidden[1])
        self.act2: nn.Module = nn.ReLU()
        self.fc3 = nn.Linear(hidden[1], NUM_CLASSES)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc3(self.act2(self.fc2(self.act1(self.fc1(self.flatten(x))))))


@dataclass(frozen=True)
class Trained:
    model: MLP
    test_accuracy: float  # fraction of held-out digits classified correctly, 0..1
    train_s: float  # wall-clock training time, seconds


def accuracy(model: nn.Module, x: np.ndarray, y: np.ndarray) -> float:
    """Fraction of images in x whose argmax logit equals y."""
    model.eval()
    with torch.no_grad():
        pred = model(torch.from_numpy(x)).argmax(dim=1).numpy()
    return float((pred == y).mean())


def run_epochs(
    model: nn.Module, opt, n: int, epochs: int, gen: torch.Generator, batch_loss, batch_size: int = BATCH_SIZE
) -> None:
    """Mini-batch training in place: each epoch a fresh permutation of the n training rows from `gen`, batches of
    `batch_size`, `batch_loss(indices)` backpropagated and one optimiser step per batch."""
    model.train()
    for _ in range(epochs):
        order = torch.randperm(n, generator=gen)
        for i in range(0, n, batch_size):
            idx = order[i : i + batch_size]
            opt.zero_grad()
            batch_loss(idx).backward()
            opt.step()


def train(seed: int = SEED, epochs: int = EPOCHS) -> Trained:
    """Train the MLP with Adam on the digits training split; deterministic for a given seed on CPU."""
    split = digits_split()
    gen = torch.Generator().manual_seed(seed)
    threads = torch.get_num_threads()
    # one thread: the model is tiny, extra OpenMP threads only contend on a busy 2-core machine, and a fixed
    # thread count keeps float reduction order, hence the weights, identical on every host
    torch.set_num_threads(1)
    try:
        torch.manual_seed(seed)  # parameter initialisation uses the global generator
        model = MLP()
        opt = torch.optim.Adam(model.parameters(), lr=LEARNING_RATE)
        x, y = torch.from_numpy(split.x_train), torch.from_numpy(split.y_train)
        t0 = time.perf_counter()
        run_epochs(model, opt, len(y), epochs, gen, lambda idx: F.cross_entropy(model(x[idx]), y[idx]))
        train_s = time.perf_counter() - t0
        model.eval()
        return Trained(model, accuracy(model, split.x_test, split.y_test), train_s)
    finally:
        torch.set_num_threads(threads)


@lru_cache(maxsize=1)
def default_trained() -> Trained:
    """The default-recipe model, trained once per process (export per opset and experiments share it)."""
    return train()


def export_onnx(model: nn.Module, path: Path, opset: int = 17, metadata: dict[str, str] | None = None) -> Path:
    """Export with the TorchScript exporter (it honours opset 13 exactly; dynamo emits ≥18) and a dynamic batch axis."""
    import onnx

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    dummy = torch.zeros(2, 1, IMAGE_SIZE, IMAGE_SIZE)
    # write next to the target, then rename: concurrent callers never see a half-written file
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=".onnx", dir=path.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)  # the TorchScript exporter is deprecated, still works
            torch.onnx.export(
                model.eval(),
                (dummy,),
                str(tmp),
                input_names=[INPUT_NAME],
                output_names=[OUTPUT_NAME],
                opset_version=opset,
                dynamo=False,
                dynamic_axes={INPUT_NAME: {0: "batch"}, OUTPUT_NAME: {0: "batch"}},
            )
        if metadata:
            proto = onnx.load(str(tmp))
            for k, v in metadata.items():
                proto.metadata_props.add(key=k, value=v)
            onnx.save(proto, str(tmp))
        tmp.replace(path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def metadata(path: Path) -> dict[str, str]:
    """The ONNX file's metadata_props (recipe hash, held-out accuracy at training, preprocessing)."""
    import onnx

    return {p.key: p.value for p in onnx.load(str(path), load_external_data=False).metadata_props}


def recipe_hash(opset: int) -> str:
    return hashlib.sha256(f"{RECIPE} opset={opset} torch={torch.__version__}".encode()).hexdigest()[:16]


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
    """Train (seed 0) and write out_dir/mlp.onnx, or reuse a valid one of the same recipe; returns its path."""
    path = Path(out_dir) / "mlp.onnx"
    if is_valid_export(path, opset):
        return path
    trained = default_trained()
    meta = {
        RECIPE_KEY: recipe_hash(opset),
        "ailab.recipe_text": RECIPE,
        "ailab.test_accuracy": f"{trained.test_accuracy:.4f}",
        "ailab.preprocess": "sklearn digits 8x8 /16 -> bilinear 28x28, values 0..1",
    }
    return export_onnx(trained.model, path, opset=opset, metadata=meta)
