"""d65 convolutions: bench_conv's kernels (direct, im2col + GEMM, Winograd) against a baseline, one table per layer;
optionally the GEMM half of d65.e4 (the wgmma GEMM against cuBLAS on LLM shapes)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from ailab.contract import Context, Output, Params
from workloads.kernels import conv, cudnn, tools
from workloads.kernels.experiments.harness_cases import CasesParams, harness_cases


class ConvParams(Params):
    baseline: Literal["cuDNN", "direct"] = Field(default="cuDNN", description="the % column's reference")
    stages: bool = Field(default=False, description="add the per-stage table (transforms, GEMM) of each method")
    cudnn: bool = Field(default=False, description="also time cuDNN when the baseline is direct")
    gemm: CasesParams | None = Field(default=None, description="harness cases shown before the conv tables")


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
    return out
