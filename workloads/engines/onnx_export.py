"""Export a PyTorch model to ONNX (FP32, batch dimension dynamic) for ONNX Runtime and TensorRT's parser."""

from __future__ import annotations

import warnings
from pathlib import Path

import torch
from torch import nn


def export(
    model: nn.Module,
    example: tuple[torch.Tensor, ...],
    path: Path,
    input_names: list[str],
    output_names: list[str],
    dynamic: dict[str, dict[int, str]] | None = None,
    opset: int = 17,
    custom_opsets: dict[str, int] | None = None,
) -> Path:
    """Write `model` as ONNX to `path` with the TorchScript-based exporter (no onnxscript graph rewrite);
    `custom_opsets` gives the version of each custom op domain the graph uses."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            model.eval(),
            example,
            str(path),
            input_names=input_names,
            output_names=output_names,
            dynamic_axes=dynamic or {n: {0: "batch"} for n in input_names + output_names},
            opset_version=opset,
            custom_opsets=custom_opsets,
            dynamo=False,
        )
    return path
