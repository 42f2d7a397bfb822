"""Precision engines on the GPU: FP32/TF32/FP16/BF16/INT8/FP8 — accuracy of the digits MLP trained here beside
its latency, and ResNet-50-shaped latency (d04.e1, d29.e1, d36.e5, d73.e1–e4)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from ailab.contract import Column, Context, Output, Params, Series, Skip

Precision = Literal["fp32", "tf32", "fp16", "bf16", "int8", "fp8_tensor", "fp8_row", "mixed_int8_fp16"]


class PrecisionParams(Params):
    precisions: list[Precision] = Field(min_length=1, description="precisions to compare; fp32 is always added")
    width: int = Field(2048, gt=0, description="hidden width of the digits MLP")
    epochs: int = Field(8, gt=0, description="training epochs of the digits MLP (FP32)")
    batch: int = Field(4096, gt=0, description="batch of the MLP latency measurement")
    resnet: bool = Field(True, description="also time the ResNet-50-shaped model (FP8/INT8 rows skipped there)")
    resnet_batch: int = Field(64, gt=0)
    iters: int = Field(100, gt=0, description="timed calls per row")
    plot: bool = Field(False, description="add the accuracy-vs-speed-up series (d73.e4)")


def precision_study(ctx: Context, p: PrecisionParams) -> Output:
    """Each precision's held-out accuracy, agreement with FP32 and latency, ratios to FP32 from the same run."""
    from workloads.engines.precision_bench import mlp_rows, resnet_rows
    from workloads.engines.tables import table, tensorrt_substitute
    from workloads.engines.trt import BuildConfig, trtexec_command

    precs = ["fp32", *[x for x in p.precisions if x != "fp32"]]
    if ctx.device != "cuda" and (bad := [x for x in precs if x.startswith("fp8")]):
        raise Skip(
            f"{', '.join(bad)} needs a CUDA GPU of sm_89 or newer (torch._scaled_mm); this run is on {ctx.device}"
        )
    mlp = mlp_rows(precs, ctx.device, p.width, p.epochs, p.batch, p.iters)
    out = Output(
        substitute=tensorrt_substitute(
            "PyTorch eager per precision: cuBLAS(Lt) FP32/TF32/FP16/BF16 GEMMs, INT8 W8A8 via torch._int_mm, "
            "FP8 E4M3 via torch._scaled_mm (per-tensor / per-row scales)"
        )
    )
    out.tables.append(
        table(
            "mlp_precision",
            [r.as_dict() for r in mlp],
            caption="Digits MLP trained here in FP32, run in each precision: held-out accuracy, "
            "agreement with FP32 and latency at the stated batch; speed-up = FP32 p50 / p50",
        )
    )
    if p.resnet:
        conv_precs = [x for x in precs if x in ("fp32", "tf32", "fp16", "bf16")]
        rn = resnet_rows(conv_precs, ctx.device, ctx.quick, p.resnet_batch, max(10, p.iters // 4))
        out.tables.append(
            table(
                "resnet50_precision",
                [r.as_dict() for r in rn],
                caption="ResNet-50-shaped model (random weights, 224x224, channels-last): latency",
            )
        )
    if p.plot:
        s = Series(
            "accuracy_vs_speedup", Column("speed-up vs FP32", "x"), Column("held-out accuracy", "%"), kind="scatter"
        )
        for r in mlp:
            s.point(r.precision, r.speedup_vs_fp32, r.accuracy_pct)
        out.series.append(s)
    _tensorrt_path(ctx, p, precs, out)
    out.notes.append(
        "TensorRT equivalent: "
        + " ".join(
            trtexec_command(BuildConfig(precision="int8" if "int8" in precs else "fp16"), "mlp.onnx", "mlp.engine")
        )
    )
    return out


def _tensorrt_path(ctx: Context, p: PrecisionParams, precs: list[str], out: Output) -> None:
    """Where TensorRT is importable (and a GPU is used), the same model as engines per precision; else a note."""
    from ailab.contract.probes import has_tensorrt
    from workloads.engines.trt_bench import NEEDS_TENSORRT

    if not has_tensorrt() or ctx.device != "cuda":
        out.notes.append(NEEDS_TENSORRT if not has_tensorrt() else "TensorRT path not run: needs --device cuda")
        return
    import torch

    from workloads.engines.data import digits
    from workloads.engines.models import trained_mlp
    from workloads.engines.onnx_export import export
    from workloads.engines.tables import table
    from workloads.engines.trt_bench import tensorrt_rows

    d = digits()
    model = trained_mlp(p.width, p.epochs, ctx.device).cpu()
    try:
        onnx = export(model, (torch.zeros(2, d.x_train.shape[1]),), ctx.workdir / "mlp.onnx", ["input"], ["logits"])
    finally:
        model.to(ctx.device)
    trt_precs = [x for x in precs if x in ("fp32", "tf32", "fp16", "bf16", "int8")]
    rows = tensorrt_rows(onnx, ctx.workdir, trt_precs, d.x_train, d.x_test, d.y_test, p.batch, p.iters)
    out.tables.append(
        table(
            "tensorrt_engines",
            [r.as_dict() for r in rows],
            caption="the same digits MLP built as TensorRT engines (INT8: entropy calibrator, 500 "
            "training samples): build, deserialisation, first batch, steady latency, accuracy",
        )
    )
