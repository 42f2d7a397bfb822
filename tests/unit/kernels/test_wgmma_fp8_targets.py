"""Issue 22's wgmma goals judged from rows: the gemm_shapes goal per shape and B layout (on rows recorded on an H200
before the layout column existed, and on rows in the format bench_gemm writes now) and the FP8 goal (fp8_gemm rows
in bench_gemm's column format, built here; no GPU in CI). Verdicts follow the rows' numbers, never a fixed answer."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from workloads.kernels import cases, jsonl, targets

FIX = Path(__file__).parent / "fixtures"
SHAPES_TABLE = "wgmma kernels on LLM shapes vs cuBLAS (same B layout)"
SHAPES_COLS = [
    ["kernel", ""], ["shape", ""], ["B layout", ""], ["M", ""], ["N", ""], ["K", ""], ["time", "ms"],
    ["throughput", "TFLOP/s"], ["of cuBLAS", "%"], ["rel. error", ""], ["reference", ""],
]  # fmt: skip
FP8_TABLE = "FP8 GEMM (e4m3 in, fp32 acc, per-tensor scales, bf16 out, TN) vs cuBLASLt FP8"
FP8_COLS = [
    ["kernel", ""], ["accumulation", ""], ["N", ""], ["time", "ms"], ["throughput", "TFLOP/s"],
    ["of cuBLASLt fast-accum", "%"], ["of cuBLASLt default", "%"], ["rel. error", ""],
    ["max |err| / max |ref|", ""], ["mean |err| / mean |ref|", ""], ["reference", ""],
]  # fmt: skip


def lines(case: str, table: str, cols: list, rows: list[list]) -> str:
    """JSON lines as harness.cuh's h::Row writes them (NaN as null)."""
    out = []
    for r in rows:
        vals = [None if isinstance(v, float) and not math.isfinite(v) else v for v in r]
        out.append(json.dumps({"case": case, "table": table, "columns": cols, "row": vals}))
    return "\n".join(out) + "\n"


def shape_row(kernel: str, shape: str, layout: str, tflops: float, base: float, err: float = 1e-5) -> list:
    ms = 2 * 64 * 14336 * 4096 / tflops / 1e9
    return [kernel, shape, layout, 64, 14336, 4096, ms, tflops, 100 * tflops / base, err, "cuBLAS SGEMM"]


def test_recorded_tn_rows_without_a_layout_column_are_judged_per_shape() -> None:
    """Recorded on an H200 (d65.e4, TN only): each shape's verdict is its best correct wgmma row's own ratio."""
    p = jsonl.parse((FIX / "gemm_shapes_h200_tn.jsonl").read_text())
    verdict = targets.check("gemm_shapes", p)
    assert verdict.startswith("Goal (issue 22) wgmma GEMM >= 95% of cuBLAS (TN) on LLM shapes: ")
    for shape in dict.fromkeys(r.get("shape") for r in p.rows(case="gemm_shapes")):
        mine = [r for r in p.rows(case="gemm_shapes") if r.get("shape") == shape and "wgmma" in r.get("kernel")]
        best = max(mine, key=lambda r: r.get("of cuBLAS"))
        pct = best.get("of cuBLAS")
        assert f"{shape} (M={best.get('M')} " in verdict
        assert f"{'MET' if pct >= 95 else 'NOT MET'} ({best.get('kernel')}: {pct:.1f}%)" in verdict


def test_each_b_layout_is_judged_against_its_own_cublas_row() -> None:
    shape = "MLP up-projection, decode batch 64"
    text = lines(
        "gemm_shapes",
        SHAPES_TABLE,
        SHAPES_COLS,
        [
            shape_row("cuBLAS HGEMM, B transposed (TN)", shape, "transposed (TN)", 170.0, 170.0),
            shape_row("wgmma 64-row tile (decode), 64x64", shape, "transposed (TN)", 168.0, 170.0),
            shape_row("cuBLAS HGEMM (fp16 in, fp32 acc)", shape, "row-major (NN)", 160.0, 160.0),
            shape_row("wgmma persistent NN (B row-major), 128x256 tile", shape, "row-major (NN)", 120.0, 160.0),
        ],
    )
    verdict = targets.check("gemm_shapes", jsonl.parse(text))
    assert "cuBLAS (the same B layout)" in verdict
    assert "B transposed (TN)): MET (wgmma 64-row tile (decode), 64x64: 98.8%)" in verdict
    assert "B row-major (NN)): NOT MET (wgmma persistent NN (B row-major), 128x256 tile: 75.0%)" in verdict


def test_a_kernel_that_failed_its_check_has_no_time_and_cannot_win() -> None:
    shape = "square 8192"
    text = lines(
        "gemm_shapes",
        SHAPES_TABLE,
        SHAPES_COLS,
        [
            shape_row("cuBLAS HGEMM, B transposed (TN)", shape, "transposed (TN)", 700.0, 700.0),
            shape_row("wgmma cluster 2x1, B multicast, 128x256 tile", shape, "transposed (TN)", math.nan, 700.0, 0.9),
        ],
    )
    p = jsonl.parse(text)
    assert math.isnan(p.rows(case="gemm_shapes")[1].get("time"))  # null in the line, NaN in the row
    assert "square 8192 (M=64 N=14336 K=4096): NOT MET (no correct wgmma kernel)" in targets.check("gemm_shapes", p)


def fp8_rows(n: int, lt_default: float, lt_fast: float, fast: float, promoted: float, err: float = 2e-3) -> list[list]:
    def row(kernel: str, accum: str, tf: float, e: float) -> list:
        ms = 2 * n**3 / tf / 1e9 if math.isfinite(tf) else math.nan
        return [kernel, accum, n, ms, tf, 100 * tf / lt_fast, 100 * tf / lt_default, e, 4 * e, e, "float64"]

    return [
        row("cuBLASLt FP8 (as torch._scaled_mm)", "default", lt_default, 1e-3),
        row("cuBLASLt FP8, FAST_ACCUM", "fast accum", lt_fast, 2e-3),
        row("wgmma FP8 persistent, 128x256 tile, setmaxnreg", "fast accum", fast, err),
        row("wgmma FP8 persistent, 128x128 tile, promoted per K=128", "promoted", promoted, err / 2),
    ]


FAST = "wgmma FP8 persistent, 128x256 tile, setmaxnreg"
PROMOTED = "wgmma FP8 persistent, 128x128 tile, promoted per K=128"


def test_fp8_goal_pairs_each_accumulation_with_cublaslt_of_the_same_semantics() -> None:
    rows = fp8_rows(4096, 1000.0, 1200.0, 1020.0, 700.0) + fp8_rows(8192, 1100.0, 1300.0, 900.0, 990.0)
    verdict = targets.check("fp8_gemm", jsonl.parse(lines("fp8_gemm", FP8_TABLE, FP8_COLS, rows)))
    assert verdict.startswith("Goal (issue 22) wgmma FP8 GEMM (e4m3 in, fp32 acc, per-tensor scales, bf16 out) >= 80%")
    n4096, n8192 = verdict.split(" | ")
    assert f"N=4096: fast accum vs FAST_ACCUM: MET ({FAST}: 85.0%" in n4096
    assert f"promoted vs default accumulation (torch._scaled_mm's default): NOT MET ({PROMOTED}: 70.0%" in n4096
    assert f"N=8192: fast accum vs FAST_ACCUM: NOT MET ({FAST}: 69.2%" in n8192
    assert f"default): MET ({PROMOTED}: 90.0%" in n8192
    assert "max/mean relative error 8.00e-03 / 2.00e-03, cuBLASLt 8.00e-03 / 2.00e-03" in n4096  # fast pair
    assert "max/mean relative error 4.00e-03 / 1.00e-03, cuBLASLt 4.00e-03 / 1.00e-03" in n4096  # promoted pair


def test_fp8_goal_ignores_a_kernel_that_failed_its_check_and_quick_runs_use_their_largest_size() -> None:
    rows = fp8_rows(256, 10.0, 12.0, math.nan, math.nan, err=math.inf) + fp8_rows(512, 50.0, 60.0, 55.0, 45.0)
    verdict = targets.check("fp8_gemm", jsonl.parse(lines("fp8_gemm", FP8_TABLE, FP8_COLS, rows)))
    assert "N=256" not in verdict
    assert f"N=512: fast accum vs FAST_ACCUM: MET ({FAST}: 91.7%" in verdict
    bad = lines("fp8_gemm", FP8_TABLE, FP8_COLS, fp8_rows(4096, 10.0, 12.0, math.nan, math.nan, err=0.5))
    assert "N=4096: NOT MET (no wgmma FP8 kernel passed its check)" in targets.check("fp8_gemm", jsonl.parse(bad))
    assert targets.check("fp8_gemm", jsonl.Parsed()) == "goal fp8_gemm: no rows"


def test_fp8_pair_without_its_cublaslt_row_is_not_met() -> None:
    rows = [r for r in fp8_rows(4096, 1000.0, 1200.0, 1100.0, 900.0) if r[1] != "default"]
    verdict = targets.check("fp8_gemm", jsonl.parse(lines("fp8_gemm", FP8_TABLE, FP8_COLS, rows)))
    assert "promoted vs default accumulation (torch._scaled_mm's default): NOT MET (no cuBLASLt FP8 row" in verdict
    assert f"fast accum vs FAST_ACCUM: MET ({FAST}: 91.7%" in verdict


def test_fp8_case_is_a_bench_gemm_case_and_fp8_gemm_a_target() -> None:
    assert "fp8_gemm" in cases.CASES["bench_gemm"]
    assert "fp8_gemm" in targets.TARGETS
    with pytest.raises(ValueError, match=r"case 'fp8' is not a case of bench_gemm"):
        cases.check_cases("bench_gemm", ["fp8"])


def test_recorded_fp8_rows_without_cublaslt_give_no_verdict_but_not_met() -> None:
    """Recorded on an H200 (call B, commit d79f2ad): cuBLASLt refused every FP8 call (notes), the kernels' rows
    passed their checks: the goal is NOT MET for want of a baseline, never MET without one."""
    p = jsonl.parse((FIX / "fp8_gemm_h200_callB.jsonl").read_text())
    rows = p.rows(case="fp8_gemm")
    assert [c for c, _ in rows[0].columns] == [c for c, _ in FP8_COLS]  # the driver's columns, as the tests build
    assert all(r.get("kernel").startswith("wgmma") and r.get("rel. error") < targets.FP8_CHECK for r in rows)
    assert len(p.notes["fp8_gemm"]) == 4
    verdict = targets.check("fp8_gemm", p)
    assert verdict.count("NOT MET (no cuBLASLt FP8 row with it in this run)") == 4
    assert verdict.count(" MET (") == verdict.count("NOT MET (")  # every verdict is NOT MET
