"""The recurrent network of the sequence-batching days: one GRU step, exported to ONNX (batch axis dynamic).

    X [B, FEATURES] FP32, H_IN [B, HIDDEN] FP32  ->  Y [B, OUTPUTS] FP32, H_OUT [B, HIDDEN] FP32

Served step by step: the state H between the steps of a conversation is kept by the server (stateful model behind
the sequence batcher) or carried by the client (stateless model behind the dynamic batcher). `reference()` runs the
same file with onnxruntime to give what the server must return.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

FEATURES, HIDDEN, OUTPUTS = 8, 32, 4
OPSET = 17
SHAPES = {"X": (-1, FEATURES), "H_IN": (-1, HIDDEN), "Y": (-1, OUTPUTS), "H_OUT": (-1, HIDDEN)}


def export(out_dir: Path, seed: int = 0) -> Path:
    """Write out_dir/gru.onnx (random weights from `seed`; written once, then reused); returns its path."""
    path = Path(out_dir) / f"gru-s{seed}.onnx"
    if path.exists():
        return path
    import torch

    class Step(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.cell = torch.nn.GRUCell(FEATURES, HIDDEN)
            self.head = torch.nn.Linear(HIDDEN, OUTPUTS)

        def forward(self, x: torch.Tensor, h: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
            h2 = self.cell(x, h)
            return self.head(h2), h2

    torch.manual_seed(seed)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    torch.onnx.export(
        Step().eval(),
        (torch.zeros(2, FEATURES), torch.zeros(2, HIDDEN)),
        str(tmp),
        input_names=["X", "H_IN"],
        output_names=["Y", "H_OUT"],
        opset_version=OPSET,
        dynamo=False,
        dynamic_axes={n: {0: "batch"} for n in SHAPES},
    )
    tmp.replace(path)  # concurrent callers never see a half-written file
    return path


def conversation(seed: int, length: int) -> np.ndarray:
    """A conversation's inputs: [length, FEATURES] FP32, reproducible from `seed`."""
    return np.random.default_rng(seed).standard_normal((length, FEATURES)).astype(np.float32)


class Reference:
    """The exported file run by onnxruntime in this process: the per-step outputs the server must return."""

    def __init__(self, path: Path) -> None:
        import onnxruntime as ort

        self.sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])

    def run(self, xs: np.ndarray) -> np.ndarray:
        """Y for every step of one conversation [length, OUTPUTS], starting from a zero state."""
        h = np.zeros((1, HIDDEN), np.float32)
        ys = []
        for x in xs:
            y, h = self.sess.run(["Y", "H_OUT"], {"X": x[None, :], "H_IN": h})
            ys.append(y[0])
        return np.stack(ys)
