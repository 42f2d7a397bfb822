"""Day-61 INT8 quantization of the digits CNN: PyTorch dynamic/static (FX) and ONNX Runtime dynamic/static (QDQ).

torch.ao.quantization is deprecated in favour of torchao but still ships and works in torch 2.13 (CPU); its
deprecation warnings are silenced here because they say nothing about the result. Calibration uses training
images only, never the held-out split.
"""

from __future__ import annotations

import copy
import os
import tempfile
import warnings
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import torch
from torch import nn

from workloads.models import compress, data

TORCH_METHODS = ("torch_dynamic", "torch_static")
ORT_METHODS = ("ort_dynamic", "ort_static")
METHODS = TORCH_METHODS + ORT_METHODS
CALIBRATION_BATCH = 32  # images per calibration forward pass


def backends() -> list[str]:
    """Quantized engines this torch build offers (fbgemm/x86 for servers, qnnpack for ARM/mobile, onednn)."""
    return list(torch.backends.quantized.supported_engines)


def check_backend(backend: str) -> None:
    """Raise naming the parameter when the requested quantized engine is not in this torch build."""
    if backend not in backends():
        raise ValueError(f"params.backend {backend!r}: allowed (available in this torch build) {', '.join(backends())}")


def torch_dynamic(model: nn.Module) -> nn.Module:
    """Dynamic INT8: Linear weights stored as int8, activations quantized per call; convolutions stay FP32."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch.ao deprecation notice
        return torch.ao.quantization.quantize_dynamic(model, {nn.Linear}, dtype=torch.qint8).eval()


def torch_static(model: nn.Module, calibration: np.ndarray, backend: str = "x86") -> nn.Module:
    """Static INT8 with FX graph mode: observers calibrated on `calibration` images, then conv/linear run in int8."""
    from torch.ao.quantization import get_default_qconfig_mapping
    from torch.ao.quantization.quantize_fx import convert_fx, prepare_fx

    check_backend(backend)
    torch.backends.quantized.engine = backend  # the converted kernels dispatch to this engine
    x = torch.from_numpy(calibration)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch.ao deprecation and observer reduce_range notices
        prepared = prepare_fx(
            copy.deepcopy(model).eval(), get_default_qconfig_mapping(backend), (x[:CALIBRATION_BATCH],)
        )
        with torch.inference_mode():
            for i in range(0, len(x), CALIBRATION_BATCH):
                prepared(x[i : i + CALIBRATION_BATCH])
        return convert_fx(prepared).eval()


def export_onnx(model: nn.Module, path: Path, opset: int = 17) -> Path:
    """FP32 model → ONNX ("input" [batch, 1, 8, 8] → "logits" [batch, 10], dynamic batch), TorchScript exporter."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=".onnx", dir=path.parent)
    os.close(fd)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)  # the TorchScript exporter is deprecated, still works
            torch.onnx.export(
                model.eval(),
                (torch.zeros(2, 1, compress.SIZE, compress.SIZE),),
                tmp,
                input_names=[data.INPUT_NAME],
                output_names=[data.OUTPUT_NAME],
                opset_version=opset,
                dynamo=False,
                dynamic_axes={data.INPUT_NAME: {0: "batch"}, data.OUTPUT_NAME: {0: "batch"}},
            )
        Path(tmp).replace(path)  # complete files only: a reader never sees a half-written model
    finally:
        Path(tmp).unlink(missing_ok=True)
    return path


def _quiet_ort_logging() -> None:
    """ORT's quantizer logs a 'consider pre-processing' warning per call through the root logger; it is advice only."""
    import logging

    logging.getLogger().setLevel(logging.ERROR)


def ort_dynamic(fp32: Path, out: Path) -> Path:
    """ORT dynamic INT8: int8 weights (MatMulInteger/ConvInteger), activation scales computed per call."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    _quiet_ort_logging()
    quantize_dynamic(str(fp32), str(out), weight_type=QuantType.QInt8)
    return out


class _Reader:
    """CalibrationDataReader over numpy images in fixed-size batches."""

    def __init__(self, x: np.ndarray) -> None:
        self._it: Iterator[dict[str, np.ndarray]] = iter(
            {data.INPUT_NAME: x[i : i + CALIBRATION_BATCH]} for i in range(0, len(x), CALIBRATION_BATCH)
        )

    def get_next(self) -> dict[str, np.ndarray] | None:
        return next(self._it, None)


def ort_static(fp32: Path, out: Path, calibration: np.ndarray) -> Path:
    """ORT static INT8 in QDQ format: uint8 activations (min-max calibrated), per-channel int8 weights."""
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static

    _quiet_ort_logging()

    class Reader(_Reader, CalibrationDataReader):
        pass

    quantize_static(
        str(fp32),
        str(out),
        Reader(calibration),
        quant_format=QuantFormat.QDQ,
        per_channel=True,
        activation_type=QuantType.QUInt8,
        weight_type=QuantType.QInt8,
    )
    return out
