"""The Day-3 MLP: scikit-learn's bundled digits upsampled to 28×28, trained on CPU, exported to ONNX.

Input contract of the exported model: "input" float32 [batch, 1, 28, 28] (dynamic batch), pixel values
in [0, 1]; output "logits" float32 [batch, 10]. The curriculum asks for MNIST, which cannot be
downloaded here; the 8×8 digits that ship with scikit-learn are upsampled bilinearly to 28×28 so the
model keeps MNIST's input shape (and the serving and TensorRT days can swap in real MNIST unchanged).
Data loading and preprocessing live in data.py (numpy only); they are re-exported here.
"""

from __future__ import annotations

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
    Split,
    digits_split,
    preprocess,
    sample_inputs,
)
from workloads.models.recipe import (
    BATCH_SIZE,
    EPOCHS,
    HIDDEN,
    LEARNING_RATE,
    export_default_model,
    is_valid_export,
    recipe_hash,
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
    "is_valid_export",
    "preprocess",
    "recipe_hash",
    "sample_inputs",
    "train",
]


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
