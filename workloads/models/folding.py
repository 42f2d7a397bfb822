"""d03.e5 helpers: export with and without constant folding and count the graph's nodes.

The plain MLP has nothing for constant folding to remove (its weights feed Gemm directly), so a second
model puts the usual foldable pattern in front of it: input standardisation whose statistics are computed
from stored buffers (std.clamp, 1/std) — constant sub-graphs an exporter may fold into initializers.
"""

from __future__ import annotations

import warnings
from collections import Counter
from pathlib import Path

import torch
from torch import nn

from workloads.models.mlp import INPUT_NAME, MLP, OUTPUT_NAME
from workloads.models.ortbench import op_counts

FOLD_EXPORTERS = ("torchscript", "dynamo")


class StandardisedMLP(nn.Module):
    """(x - mean) / clamp(std) then the MLP; mean/std are buffers, so their arithmetic is foldable."""

    def __init__(self, mlp: MLP, mean: float, std: float) -> None:
        super().__init__()
        self.mlp = mlp
        self.register_buffer("mean", torch.tensor([mean], dtype=torch.float32))
        self.register_buffer("std", torch.tensor([std], dtype=torch.float32))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        inv = torch.reciprocal(self.std.clamp(min=1e-6))  # depends only on buffers: a constant sub-graph
        return self.mlp((x - self.mean) * inv)


def export_folding(model: nn.Module, path: Path, exporter: str, fold: bool, opset: int = 17) -> Counter[str]:
    """Export with constant folding on or off and return the node counts by op type.

    torchscript: `do_constant_folding`; dynamo: `optimize` (onnxscript's optimiser, which folds constants).
    """
    if exporter not in FOLD_EXPORTERS:
        raise ValueError(f"error: exporter {exporter!r}: allowed {', '.join(FOLD_EXPORTERS)}")
    x = torch.zeros(2, 1, 28, 28)
    common = {"input_names": [INPUT_NAME], "output_names": [OUTPUT_NAME], "opset_version": opset}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # TorchScript exporter deprecation chatter
        if exporter == "torchscript":
            axes = {INPUT_NAME: {0: "batch"}, OUTPUT_NAME: {0: "batch"}}
            torch.onnx.export(
                model.eval(), (x,), str(path), dynamo=False, dynamic_axes=axes, do_constant_folding=fold, **common
            )
        else:
            dyn = ({0: torch.export.Dim("batch")},)
            torch.onnx.export(
                model.eval(), (x,), str(path), dynamo=True, dynamic_shapes=dyn, optimize=fold, verbose=False, **common
            )
    return op_counts(path)
