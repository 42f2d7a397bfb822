"""Issue 22's tensor-core convolution: the d65.e4 runner's fp16 NHWC half (bench_conv --fp16 rows merged with cuDNN
fp16 NHWC rows into one table), the conv_tc goal verdicts, and the constants the C++ and Python sides must share.

No GPU exists here: tools.run_bench and cudnn.measure/measure_fp16_nhwc are replaced. The fp32 rows are recorded H100
output (fixtures/bench_conv_h100.jsonl, see test_conv.py); the tensor-core rows below are HAND-WRITTEN in the
harness's line format (made-up times, no measurement) to exercise the merge and the verdict logic. The kernel itself
is checked on the GPU against a float64 reference by bench_conv (a failing kernel's row says FAIL and is not timed).
"""

from __future__ import annotations

import math
import re
from pathlib import Path

import pytest
import yaml

from ailab.contract import Context, Output
from ailab.contract.params import validate
from workloads.kernels import cudnn, jsonl, targets, tools
from workloads.kernels.experiments.convolution import ConvParams, conv_vs_baseline

ROOT = Path(__file__).parents[3]
FIX = Path(__file__).parent / "fixtures"
L1, L4 = "N=32 C=64 K=64 56x56", "N=32 C=512 K=512 7x7"
SHAPES = {L1: (32, 64, 64, 56, 56), L4: (32, 512, 512, 7, 7)}
OURS = "implicit GEMM mma.sync, 128x128x32 tile, 8 warps, 4 stages"
OURS_SMALL = "implicit GEMM mma.sync, 64x64x32 tile, 4 warps, 4 stages"
WGMMA = "implicit GEMM wgmma, 128x64x64 tile, 2 warpgroups, 4 stages"


def own(layer: str, impl: str, tflops: float, check: str = "pass", err: float = 3e-4) -> jsonl.Record:
    """A bench_conv --fp16 row (case conv_tc) as the C++ side prints it."""
    n, c, k, h, w = SHAPES[layer]
    ms = 2.0 * n * k * c * 9 * h * w / tflops / 1e9
    row = [layer, n, c, k, h, w, impl, "conv3x3_igemm_tc", ms, tflops, err, 2e-3, check, "CPU float64"]
    return jsonl.Record("conv_tc", cudnn.TABLE_TC, list(cudnn.TC_COLUMNS), row)


def base(layer: str, tflops: float) -> jsonl.Record:
    """A cuDNN fp16 NHWC row (case cudnn_tc) as cudnn.measure_fp16_nhwc builds it."""
    r = own(layer, cudnn.IMPLEMENTATION_TC, tflops)
    return jsonl.Record("cudnn_tc", r.table, r.columns, [*r.row[:7], "xmma_fprop (NHWC out)", *r.row[8:]])


def goal(*records: jsonl.Record) -> str:
    return targets.check("conv_tc", jsonl.Parsed(records=list(records)))


def test_goal_per_layer_best_passing_kernel_against_cudnn_of_the_same_layer() -> None:
    v = goal(own(L1, OURS, 150), own(L1, OURS_SMALL, 100), base(L1, 200), own(L4, OURS, 60), base(L4, 100))
    assert v.startswith("Goal (issue 22) tensor-core implicit-GEMM 3x3 convolution >= 70% of cuDNN (fp16 NHWC")
    assert f"{L1}: MET ({OURS}: 75.0%)" in v
    assert f"{L4}: NOT MET ({OURS}: 60.0%)" in v


def test_goal_ignores_failed_and_untimed_rows() -> None:
    v = goal(own(L1, OURS, 190, check="FAIL", err=0.4), own(L1, OURS_SMALL, 120), base(L1, 200))
    assert f"{L1}: NOT MET ({OURS_SMALL}: 60.0%)" in v
    v = goal(own(L1, OURS, math.nan, check="FAIL", err=math.inf), base(L1, 200))
    assert f"{L1}: NOT MET (no tensor-core kernel passed its check)" in v


def test_goal_without_cudnn_row_or_without_rows() -> None:
    assert f"{L1}: NOT MET (no cuDNN fp16 row in this run)" in goal(own(L1, OURS, 150))
    assert goal(base(L1, 200)) == "goal conv_tc: no rows"


def test_exactly_70_percent_meets_the_goal() -> None:
    assert f"{L1}: MET ({OURS}: 70.0%)" in goal(own(L1, OURS, 140), base(L1, 200))


@pytest.fixture
def calls(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, tuple[str, ...]]]:
    got: list[tuple[str, tuple[str, ...]]] = []
    fp32 = jsonl.parse((FIX / "bench_conv_h100.jsonl").read_text())
    tc = jsonl.Parsed(
        records=[own(L1, OURS, 150), own(L1, OURS_SMALL, 100), own(L4, OURS, 60)],
        notes={"conv_tc": ["N=32 C=3 K=64 56x56: not run: the tensor-core kernel needs C % 32 == 0 and K % 8 == 0"]},
    )

    wg = jsonl.Parsed(records=[own(L1, WGMMA, 160)])

    def run_bench(name: str, args: tuple[str, ...] = ()) -> jsonl.Parsed:
        got.append((name, args))
        if "--wg1" in args:
            return jsonl.Parsed()
        return (wg if "--wgmma" in args else tc) if "--fp16" in args else fp32

    def measure(shapes: list[cudnn.Shape]) -> list[jsonl.Record]:
        got.append(("cudnn", tuple(s.label for s in shapes)))
        return jsonl.parse((FIX / "cudnn_h100.jsonl").read_text()).records

    def measure_fp16(shapes: list[cudnn.Shape]) -> list[jsonl.Record]:
        got.append(("cudnn fp16", tuple(s.label for s in shapes)))
        return [base(s.label, {L1: 200.0, L4: 100.0}[s.label]) for s in shapes]

    monkeypatch.setattr(tools, "run_bench", run_bench)
    monkeypatch.setattr(cudnn, "measure", measure)
    monkeypatch.setattr(cudnn, "measure_fp16_nhwc", measure_fp16)
    return got


def run(tmp_path: Path, **params: object) -> Output:
    ctx = Context(experiment_id="d65.e4", device="cuda", quick=False, workdir=tmp_path)
    return conv_vs_baseline(ctx, validate(ConvParams, dict(params)))


def test_runner_adds_one_tensor_core_table_and_the_goal(calls, tmp_path: Path) -> None:
    out = run(tmp_path, baseline="cuDNN", tensor_cores=True)
    # each fp16 kernel family runs in its own bench_conv process; cuDNN fp16 is timed on exactly the layers printed
    assert ("bench_conv", ("--fp16",)) in calls and ("bench_conv", ("--fp16", "--wgmma")) in calls
    assert ("cudnn fp16", (L1, L4)) in calls
    assert len(out.tables) == 6  # five fp32 layer tables, then the tensor-core table
    t = out.tables[-1]
    assert t.name.startswith("3x3 conv on tensor cores (NHWC fp16 in, fp32 accumulate) vs cuDNN")
    assert [c.name for c in t.columns] == [
        "layer",
        "implementation",
        "kernels",
        "time",
        "throughput",
        "of cuDNN fp16",
        "rel. error",
        "check",
    ]
    assert [(r[0], r[1]) for r in t.rows] == [
        (L1, cudnn.IMPLEMENTATION_TC),
        (L1, OURS),
        (L1, OURS_SMALL),
        (L1, WGMMA),
        (L4, cudnn.IMPLEMENTATION_TC),
        (L4, OURS),
    ]
    assert [round(r[5], 6) for r in t.rows] == [100, 75, 50, 80, 100, 60]
    assert "batches of 10" in t.caption and "same fp16 inputs" in t.caption
    assert out.notes[-2].startswith("N=32 C=3 K=64 56x56: not run")
    assert f"{L1}: MET ({WGMMA}: 80.0%)" in out.notes[-1] and f"{L4}: NOT MET" in out.notes[-1]


def test_a_failed_fp16_run_keeps_the_fp32_tables_and_says_so(calls, monkeypatch, tmp_path: Path) -> None:
    def failing(name: str, args: tuple[str, ...] = ()) -> jsonl.Parsed:
        if "--fp16" in args:
            raise RuntimeError(f"bench_conv {' '.join(args)} exited -6: an illegal memory access")
        return jsonl.parse((FIX / "bench_conv_h100.jsonl").read_text())

    monkeypatch.setattr(tools, "run_bench", failing)
    out = run(tmp_path, baseline="cuDNN", tensor_cores=True)
    assert len(out.tables) == 5
    assert out.notes[-4] == (
        "Tensor-core convolution (bench_conv --fp16): bench_conv --fp16 exited -6: an illegal memory access"
    )
    assert out.notes[-3].startswith("Tensor-core convolution (bench_conv --fp16 --wgmma): ")
    assert out.notes[-2].startswith("Tensor-core convolution (bench_conv --fp16 --wgmma --wg1): ")
    assert out.notes[-1] == "goal conv_tc: no rows"
    assert all(name != "cudnn fp16" for name, _ in calls)


def test_a_failed_wgmma_run_keeps_the_mma_sync_rows(calls, monkeypatch, tmp_path: Path) -> None:
    real = tools.run_bench

    def wgmma_fails(name: str, args: tuple[str, ...] = ()) -> jsonl.Parsed:
        if "--wgmma" in args:
            raise RuntimeError("bench_conv --fp16 --wgmma exited -4: illegal instruction")
        return real(name, args)

    monkeypatch.setattr(tools, "run_bench", wgmma_fails)
    out = run(tmp_path, baseline="cuDNN", tensor_cores=True)
    assert WGMMA not in [r[1] for r in out.tables[-1].rows] and OURS in [r[1] for r in out.tables[-1].rows]
    assert any(n.startswith("Tensor-core convolution (bench_conv --fp16 --wgmma): ") for n in out.notes)
    assert f"{L1}: MET ({OURS}: 75.0%)" in out.notes[-1]


def test_quick_runs_pass_quick_to_the_fp16_run_too(calls, tmp_path: Path) -> None:
    ctx = Context(experiment_id="d65.e4", device="cuda", quick=True, workdir=tmp_path)
    conv_vs_baseline(ctx, validate(ConvParams, {"tensor_cores": True}))
    assert ("bench_conv", ("--fp16", "--quick")) in calls and ("bench_conv", ("--fp16", "--wgmma", "--quick")) in calls
    assert ("bench_conv", ("--fp16", "--wgmma", "--wg1", "--quick")) in calls


def test_without_tensor_cores_nothing_fp16_runs(calls, tmp_path: Path) -> None:
    run(tmp_path, baseline="cuDNN")
    assert all("--fp16" not in args and name != "cudnn fp16" for name, args in calls)


def test_d65_e4_binding_asks_for_the_tensor_core_half() -> None:
    b = yaml.safe_load((ROOT / "workloads" / "kernels" / "bindings.yaml").read_text())
    assert validate(ConvParams, b["d65.e4"]["params"]).tensor_cores is True
    assert validate(ConvParams, b["d65.e2"]["params"]).tensor_cores is False


def test_cpp_and_python_share_tolerance_batch_and_table() -> None:
    """bench_conv.cu and cudnn.py must judge and time both sides alike, and print into the same table."""
    src = (ROOT / "cuda" / "bench" / "bench_conv.cu").read_text()
    tol = re.search(r"TC_TOLERANCE = ([0-9.e-]+);", src)
    batch = re.search(r"TC_BATCH = (\d+);", src)
    assert tol and float(tol.group(1)) == cudnn.TC_TOLERANCE
    assert batch and int(batch.group(1)) == cudnn.TC_BATCH
    assert f'h::Row("conv_tc", "{cudnn.TABLE_TC}")' in src
    for name, unit in cudnn.TC_COLUMNS:  # the C++ row has the Python columns, with the same units
        assert re.search(rf'\.[sfi]\("{re.escape(name)}"' + (rf', "{re.escape(unit)}"' if unit else ""), src), name


def test_tc_rows_round_trip_through_the_line_format() -> None:
    rec = base(L1, 200)
    (back,) = jsonl.parse(cudnn.to_json(rec)).records
    assert back.case == "cudnn_tc" and back.columns == rec.columns and back.get("check") == "pass"


def test_cudnn_cli_takes_fp16_and_refuses_bad_shapes(capsys: pytest.CaptureFixture[str]) -> None:
    assert cudnn.main(["--fp16"]) == 2
    assert "usage: python3 -m workloads.kernels.cudnn [--fp16]" in capsys.readouterr().err
    assert cudnn.main(["--fp16", "32,64,64,56"]) == 2
    assert "error: shape '32,64,64,56': expected N,C,K,H,W" in capsys.readouterr().err
