"""d65 convolutions: the conv runner's merge of bench_conv and cuDNN rows, Winograd's note, and the cuDNN helpers.

The GPU cannot exist here: tools.run_bench and cudnn.measure are replaced by recorded H100 output of the same code
(fixtures/bench_conv_h100.jsonl: `build/cuda/bench_conv`; fixtures/cudnn_h100.jsonl: stdout of
`python3 -m workloads.kernels.cudnn 32,64,64,56,56 32,128,128,28,28 32,256,256,14,14 32,512,512,7,7 32,3,64,56,56`;
nvidia-h100-x1, working tree on top of commit c670047). The CUDA math itself is checked on the GPU against a float64
reference (tests/gpu/test_conv_gpu.py), not re-implemented here.
"""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from ailab.contract import Context, Output, Skip
from ailab.contract.params import ParamsError, validate
from workloads.kernels import cudnn, jsonl, tools
from workloads.kernels.experiments.convolution import ConvParams, conv_vs_baseline

FIX = Path(__file__).parent / "fixtures"
LAYERS = ["N=32 C=64 K=64 56x56", "N=32 C=128 K=128 28x28", "N=32 C=256 K=256 14x14", "N=32 C=512 K=512 7x7"]


@pytest.fixture
def recorded(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, tuple[str, ...]]]:
    calls: list[tuple[str, tuple[str, ...]]] = []
    files = {"bench_conv": "bench_conv_h100.jsonl", "bench_gemm": "bench_gemm_sweep.jsonl"}

    def run_bench(name: str, args: tuple[str, ...] = ()) -> jsonl.Parsed:
        calls.append((name, args))
        return jsonl.parse((FIX / files[name]).read_text())

    def measure(shapes: list[cudnn.Shape]) -> list[jsonl.Record]:
        calls.append(("cudnn", tuple(s.label for s in shapes)))
        return jsonl.parse((FIX / "cudnn_h100.jsonl").read_text()).records

    monkeypatch.setattr(tools, "run_bench", run_bench)
    monkeypatch.setattr(cudnn, "measure", measure)
    return calls


def run(tmp_path: Path, device: str = "cuda", **params: object) -> Output:
    ctx = Context(experiment_id="d65.e4", device=device, quick=False, workdir=tmp_path)
    return conv_vs_baseline(ctx, validate(ConvParams, dict(params)))


def test_one_table_per_layer_against_cudnn(recorded, tmp_path: Path) -> None:
    out = run(tmp_path, baseline="cuDNN")
    assert [t.name for t in out.tables][:4] == [f"3x3 conv {la} (stride 1, pad 1, fp32)" for la in LAYERS]
    assert len(out.tables) == 5  # four ResNet layers + the small-C layer
    # cuDNN is timed on exactly the layers bench_conv printed, in its order
    assert recorded[-1] == ("cudnn", (*LAYERS, "N=32 C=3 K=64 56x56"))
    for t in out.tables:
        assert [c.name for c in t.columns] == [
            "implementation",
            "GEMM",
            "time",
            "throughput",
            "of cuDNN",
            "rel. error",
            "workspace",
        ]
        impls = [r[0] for r in t.rows]
        assert impls.count("im2col + GEMM") == 2 and impls.count("Winograd F(2x2,3x3)") == 2
        (cud,) = [r for r in t.rows if r[0] == cudnn.IMPLEMENTATION]
        assert cud[4] == pytest.approx(100)
        for r in t.rows:  # % of cuDNN is the throughput ratio of the same run
            assert r[4] == pytest.approx(100 * r[3] / cud[3])
        assert "effective" in t.caption and "TF32 off" in t.caption


def test_winograd_note_states_the_saving_and_what_was_measured(recorded, tmp_path: Path) -> None:
    note = run(tmp_path).notes[-1]
    assert "2.25x fewer" in note
    assert "N=32 C=64 K=64 56x56: multiplies /2.25" in note
    assert f"N=32 C=512 K=512 7x7: multiplies /{9 * 49 / (16 * 16):.2f}" in note  # odd 7x7: partial tiles


def test_direct_baseline_with_stages_and_no_cudnn(recorded, tmp_path: Path) -> None:
    out = run(tmp_path, baseline="direct", stages=True)
    assert all(name != "cudnn" for name, _ in recorded)
    layer_tables, (stages,) = out.tables[:-1], out.tables[-1:]
    assert all(t.columns[4].name == "of direct" for t in layer_tables)
    assert all(cudnn.IMPLEMENTATION not in [r[0] for r in t.rows] for t in layer_tables)
    shares: dict[tuple[str, str], float] = {}
    for layer, impl, stage, _, share in stages.rows:
        if "cuBLAS" in stage:
            assert math.isnan(share)
        else:
            shares[(layer, impl)] = shares.get((layer, impl), 0) + share
    assert len(shares) == 10 and all(v == pytest.approx(100) for v in shares.values())


def test_gemm_half_comes_first_with_its_targets(recorded, tmp_path: Path) -> None:
    out = run(tmp_path, baseline="cuDNN", gemm={"binary": "bench_gemm", "cases": ["sweep"], "targets": ["sgemm"]})
    assert out.tables[0].name == "GEMM kernels vs cuBLAS"
    assert out.notes[0].startswith("Target best FP32 SGEMM >= 70% of cuBLAS SGEMM")
    assert out.tables[1].name.startswith("3x3 conv N=32 C=64")


def test_unknown_baseline_is_refused_before_anything_runs(recorded, tmp_path: Path) -> None:
    with pytest.raises(ParamsError, match=r"field baseline = 'cublas': Input should be 'cuDNN' or 'direct'"):
        run(tmp_path, baseline="cublas")
    assert recorded == []


def test_skips_without_cuda(tmp_path: Path) -> None:
    with pytest.raises(Skip, match="needs a CUDA GPU"):
        run(tmp_path, device="cpu")


def test_shapes_parse_and_refuse_bad_input(capsys: pytest.CaptureFixture[str]) -> None:
    s = cudnn.Shape.parse("32,64,64,56,56")
    assert s.label == "N=32 C=64 K=64 56x56" and s.flops == 2.0 * 32 * 64 * 64 * 9 * 56 * 56
    with pytest.raises(ValueError, match=r"shape '32,64,0,7,7': expected N,C,K,H,W as five positive integers"):
        cudnn.Shape.parse("32,64,0,7,7")
    assert cudnn.main(["1,2,3"]) == 2
    assert "error: shape '1,2,3'" in capsys.readouterr().err


def test_cudnn_rows_merge_with_bench_conv_rows() -> None:
    """The Python side writes the harness's line format with the bench's columns (NaN as null)."""
    bench = jsonl.parse((FIX / "bench_conv_h100.jsonl").read_text()).rows(case="conv")
    rec = jsonl.Record("cudnn", cudnn.TABLE, list(cudnn.COLUMNS), [*bench[0].row[:10], math.nan, 1e-7, "ref"])
    (back,) = jsonl.parse(cudnn.to_json(rec)).records
    assert back.columns == bench[0].columns and math.isnan(back.get("workspace"))
    assert cudnn.shapes_of(bench)[0] == cudnn.Shape(32, 64, 64, 56, 56)


def test_kernel_names_are_shortened() -> None:
    names = ["void cudnn::winograd_nonfused::foo<float, 4>(float*)", "fft2d_r2c_32x32(x)", "fft2d_r2c_32x32(y)"]
    assert cudnn.kernel_names(names) == "cudnn::winograd_nonfused::foo + fft2d_r2c_32x32"
    assert cudnn.kernel_names([]) == "unknown"
