"""The TensorRT path of the precision, calibration and engine-file experiments, for hosts that have TensorRT:
build one engine per precision from the digits MLP's ONNX file (INT8 with a calibrator over a sampled set), time
deserialisation, the first batch and steady batches, and score held-out accuracy — the rows the substitutes answer.

Every function starts with `require_tensorrt()`; runners call `tensorrt_rows` only where `has_tensorrt()` and
otherwise record "needs TensorRT" in a note.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from workloads.engines.calibration import calibration_set
from workloads.engines.profiles import batch_profile
from workloads.engines.trt import BuildConfig, build_engine, deserialize_seconds, make_calibrator, require_tensorrt

NEEDS_TENSORRT = "TensorRT path not run: needs TensorRT (the `tensorrt` package is not importable on this host)"


@dataclass
class EngineRow:
    precision: str
    calibrator: str
    calibration_size: int
    build_s: float
    engine_kib: float
    deserialize_ms: float
    first_batch_ms: float
    p50_ms: float
    p95_ms: float
    accuracy_pct: float

    def as_dict(self) -> dict:
        return asdict(self)


class EngineRunner:
    """One execution context over torch CUDA buffers (TensorRT 10 name-based I/O, execute_async_v3)."""

    def __init__(self, engine: Any) -> None:
        trt = require_tensorrt()
        self.engine, self.ctx = engine, engine.create_execution_context()
        names = [engine.get_tensor_name(i) for i in range(engine.num_io_tensors)]
        self.inputs = [n for n in names if engine.get_tensor_mode(n) == trt.TensorIOMode.INPUT]
        self.outputs = [n for n in names if n not in self.inputs]

    def __call__(self, x: Any) -> Any:
        import torch

        self.ctx.set_input_shape(self.inputs[0], tuple(x.shape))
        self.ctx.set_tensor_address(self.inputs[0], x.data_ptr())
        out = torch.empty(tuple(self.ctx.get_tensor_shape(self.outputs[0])), device=x.device, dtype=torch.float32)
        self.ctx.set_tensor_address(self.outputs[0], out.data_ptr())
        if not self.ctx.execute_async_v3(torch.cuda.current_stream().cuda_stream):
            raise RuntimeError("TensorRT execute_async_v3 failed")
        return out


def tensorrt_rows(
    onnx: Path,
    workdir: Path,
    precisions: list[str],
    x_train: np.ndarray,
    x_test: np.ndarray,
    y_test: np.ndarray,
    batch: int,
    iters: int,
    calibrator: str = "entropy",
    calibration_size: int = 500,
) -> list[EngineRow]:
    """One engine per precision (`int8` calibrated on `calibration_size` training samples), timed and scored."""
    require_tensorrt()
    import torch

    from workloads.engines.timing import time_calls, wall_once

    feat = x_test.shape[1]
    prof = batch_profile("input", (feat,), 1, batch, max(batch, len(x_test)))
    xt = torch.from_numpy(x_test).cuda()
    xb = torch.from_numpy(np.resize(x_test, (batch, feat)).astype(np.float32)).cuda()
    rows = []
    for prec in precisions:
        cfg = BuildConfig(
            precision=prec,
            profiles=(prof,),
            calibrator=calibrator,
            calibration_cache=str(workdir / f"calib_{calibrator}_{calibration_size}.cache"),
        )
        calib = None
        if prec == "int8":
            calib = make_calibrator(cfg, calibration_set(x_train, calibration_size), 50, "input")
        built = build_engine(onnx, workdir / f"mlp_{prec}.engine", cfg, calib)
        engine, deser_s = deserialize_seconds(built.path)
        run = EngineRunner(engine)
        _, first_s = wall_once(lambda run=run: run(xb), "cuda")
        lat = time_calls(lambda run=run: run(xb), "cuda", warmup=5, iters=iters)
        acc = float((run(xt).argmax(1).cpu().numpy() == y_test).mean() * 100)
        rows.append(
            EngineRow(
                prec,
                calibrator if prec == "int8" else "-",
                calibration_size if prec == "int8" else 0,
                built.build_s,
                built.size_bytes / 1024,
                deser_s * 1e3,
                first_s * 1e3,
                lat.p50_ms,
                lat.p95_ms,
                acc,
            )
        )
    return rows
