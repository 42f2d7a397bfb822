"""d65 convolutions: bench_conv's kernels (direct, im2col + GEMM, Winograd) against a baseline, one table per layer;
optionally the GEMM half of d65.e4 (the wgmma GEMM against cuBLAS on LLM shapes) and issue 22's tensor-core
implicit-GEMM convolution against cuDNN at the same precision and layout (fp16 NHWC)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from ailab.contract import Context, Output, Params
from workloads.kernels import conv, cudnn, jsonl, targets, tools
from workloads.kernels.experiments.harness_cases import CasesParams, harness_cases


class ConvParams(Params):
    baseline: Literal["cuDNN", "direct"] = Field(default="cuDNN", description="the % column's reference")
    stages: bool = Field(default=False, description="add the per-stage table (transforms, GEMM) of each method")
    cudnn: bool = Field(default=False, description="also time cuDNN when the baseline is direct")
    gemm: CasesParams | None = Field(default=None, description="harness cases shown before the conv tables")
    tensor_cores: bool = Field(
        default=False,
        description="also run the fp16 NHWC tensor-core convolutions (bench_conv --fp16: mma.sync; --fp16 --wgmma: "
        "wgmma) against cuDNN fp16 NHWC, with issue 22's goal",
    )


def conv_vs_baseline(ctx: Context, p: ConvParams) -> Output:
    """Per layer: time, TFLOP/s, % of the baseline, rel. error, workspace; Winograd's saving; optional GEMM rows."""
    tools.require_cuda(ctx)
    out = Output()
    if p.gemm is not None:
        sub = harness_cases(ctx, p.gemm)
        out.tables += sub.tables
        out.notes += sub.notes
    parsed = tools.run_bench("bench_conv", ("--quick",) if ctx.quick else ())
    rows = parsed.rows(case="conv")
    if not rows:
        raise RuntimeError("bench_conv printed no conv rows")
    if p.baseline == "cuDNN" or p.cudnn:
        rows = rows + cudnn.measure(cudnn.shapes_of(rows))
    out.tables += conv.layer_tables(rows, p.baseline)
    stages = parsed.rows(case="stages")
    if p.stages and stages:
        out.tables.append(conv.stage_table(stages))
    out.notes.append(conv.winograd_note(rows, stages))
    if p.tensor_cores:
        tensor_core_conv(out, ctx.quick)
    return out


def tensor_core_conv(out: Output, quick: bool) -> None:
    """bench_conv --fp16 (mma.sync), --fp16 --wgmma and --fp16 --wgmma --wg1 (one-warpgroup tiles), each in its own
    process (a failure in one keeps the fp32 tables and the others' rows), then cuDNN fp16 NHWC on the layers they
    ran; one table, the goal note. A failed run is stated in the notes; a goal without rows reads 'no rows'."""
    rows: list[jsonl.Record] = []
    notes: list[str] = []
    for extra in ((), ("--wgmma",), ("--wgmma", "--wg1")):
        args = ("--fp16", *extra, *(("--quick",) if quick else ()))
        try:
            parsed = tools.run_bench("bench_conv", args)
        except RuntimeError as exc:
            notes.append(f"Tensor-core convolution (bench_conv {' '.join(args)}): {exc}")
            continue
        rows += parsed.rows(case="conv_tc")
        notes += parsed.notes.get("conv_tc", [])
    base = cudnn.measure_fp16_nhwc(cudnn.shapes_of(rows)) if rows else []
    if rows:
        out.tables.append(conv.tc_table(rows + base))
    out.notes += list(dict.fromkeys(notes))  # both runs state the layers neither kernel takes
    out.notes.append(targets.check("conv_tc", jsonl.Parsed(records=rows + base)))
