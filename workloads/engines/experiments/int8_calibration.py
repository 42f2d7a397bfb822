"""INT8 calibration with ONNX Runtime's static quantiser on the CPU (d04.e3, d36.e1–e4): calibrator, weight
granularity and calibration-set size against held-out accuracy and CPU latency, FP32 baseline in the same run."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from ailab.contract import Context, Output, Params


class CalibrationParams(Params):
    calibrators: list[Literal["minmax", "entropy", "percentile"]] = Field(min_length=1)
    granularities: list[Literal["per_tensor", "per_channel"]] = Field(["per_tensor"], min_length=1)
    sizes: list[int] = Field([500], min_length=1, description="calibration-set sizes (samples)")
    width: int = Field(512, gt=0, description="hidden width of the digits MLP")
    epochs: int = Field(6, gt=0)
    batch: int = Field(64, gt=0, description="batch of the latency measurement")
    iters: int = Field(100, gt=0)
    threads: int = Field(1, gt=0, description="ONNX Runtime intra-op threads")


def int8_calibration(ctx: Context, p: CalibrationParams) -> Output:
    """One FP32 row, then one INT8 row per (calibrator, granularity, size)."""
    import os

    import torch

    from workloads.engines.calibration import sample_indices
    from workloads.engines.data import digits
    from workloads.engines.models import trained_mlp
    from workloads.engines.onnx_export import export
    from workloads.engines.ort_int8 import study
    from workloads.engines.tables import table, tensorrt_substitute
    from workloads.engines.trt import BuildConfig, trtexec_command

    d = digits()
    for s in p.sizes:
        sample_indices(len(d.x_train), s)  # a size larger than the data fails here, before any work
    model = trained_mlp(p.width, p.epochs, "cpu")
    onnx = export(model, (torch.zeros(2, d.x_train.shape[1]),), ctx.workdir / "mlp_fp32.onnx", ["input"], ["logits"])
    configs = [(c, g, s) for c in p.calibrators for g in p.granularities for s in p.sizes]
    rows = study(onnx, ctx.workdir, d.x_train, d.x_test, d.y_test, configs, p.batch, p.iters, p.threads)
    load = os.getloadavg()
    out = Output(
        substitute=tensorrt_substitute(
            "ONNX Runtime static quantisation (QDQ, signed INT8) with its MinMax/Entropy/Percentile calibrators, "
            "run by ONNX Runtime's CPU provider"
        )
    )
    out.tables.append(
        table(
            "int8_calibration",
            [r.as_dict() for r in rows],
            caption=f"Digits MLP ({p.width} wide) trained here; held-out accuracy of the 450 original "
            f"digits; latency at batch {p.batch}, {p.threads} ORT thread(s), on {ctx.device}",
        )
    )
    out.notes.append(
        f"host load average (1/5/15 min) at the end: {load[0]:.2f}/{load[1]:.2f}/{load[2]:.2f}; {os.cpu_count()} CPUs"
    )
    out.notes.append(_tensorrt_path(ctx, p, onnx, d, out))
    out.notes.append(
        "TensorRT equivalent: "
        + " ".join(
            trtexec_command(
                BuildConfig(precision="int8", calibrator=p.calibrators[0], calibration_cache="calib.cache"),
                "mlp.onnx",
                "mlp_int8.engine",
            )
        )
    )
    return out


def _tensorrt_path(ctx: Context, p: CalibrationParams, onnx: object, d: object, out: Output) -> str:
    """Where TensorRT is importable and the run uses the GPU: INT8 engines per calibrator and set size."""
    from ailab.contract.probes import has_tensorrt
    from workloads.engines.trt_bench import NEEDS_TENSORRT

    if not has_tensorrt():
        return NEEDS_TENSORRT
    if ctx.device != "cuda":
        return "TensorRT path not run: INT8 engines need --device cuda"
    from workloads.engines.tables import table
    from workloads.engines.trt_bench import tensorrt_rows

    rows = []
    for c in p.calibrators:
        for s in p.sizes:
            rows += tensorrt_rows(
                onnx,
                ctx.workdir,
                ["int8"],
                d.x_train,
                d.x_test,
                d.y_test,
                p.batch,
                p.iters,
                calibrator=c,
                calibration_size=s,
            )  # type: ignore[arg-type, attr-defined]
    out.tables.append(
        table(
            "tensorrt_int8",
            [r.as_dict() for r in rows],
            caption="TensorRT INT8 engines of the "
            "same ONNX file, per calibrator and calibration-set size (weights per channel)",
        )
    )
    return "TensorRT path run: see tensorrt_int8"
