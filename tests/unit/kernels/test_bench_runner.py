"""The harness_cases runner's selection logic (cases, kernels, only_n, series, targets) on recorded H100 output.

The GPU cannot exist here: tools.run_bench is replaced by the parse of a recorded run of the same binary.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from ailab.contract import Context, Output
from ailab.contract.params import ParamsError, validate
from workloads.kernels import jsonl, tools
from workloads.kernels.experiments.harness_cases import CasesParams, harness_cases

FIX = Path(__file__).parent / "fixtures"


@pytest.fixture
def recorded(monkeypatch: pytest.MonkeyPatch) -> None:
    files = {"bench_gemm": "bench_gemm_sweep.jsonl", "bench_memory": "bench_memory_vector_add_variants.jsonl"}
    monkeypatch.setattr(tools, "run_bench", lambda name, args=(): jsonl.parse((FIX / files[name]).read_text()))


def run(tmp_path: Path, **params: object) -> Output:
    ctx = Context(experiment_id="d11.e1", device="cuda", quick=True, workdir=tmp_path)
    return harness_cases(ctx, validate(CasesParams, dict(params)))


def test_kernels_filter_and_series(recorded: None, tmp_path: Path) -> None:
    out = run(
        tmp_path,
        binary="bench_gemm",
        cases=["sweep"],
        kernels=["double buffering", "cuBLAS SGEMM"],
        series=[{"table": "GEMM kernels vs cuBLAS", "x": "N", "y": "throughput", "group": "kernel"}],
    )
    (t,) = out.tables
    assert {r[0] for r in t.rows} == {"double buffering", "cuBLAS SGEMM"}
    assert set(out.series[0].lines) == {"double buffering", "cuBLAS SGEMM"}


def test_only_n_falls_back_to_the_largest_size_of_a_quick_sweep(recorded: None, tmp_path: Path) -> None:
    out = run(tmp_path, binary="bench_gemm", cases=["sweep"], only_n=[4096], targets=["sgemm"])
    n_col = [c.name for c in out.tables[0].columns].index("N")
    sizes = {r[n_col] for r in out.tables[0].rows}
    assert sizes == {512}
    assert out.notes and out.notes[0].startswith("Target best FP32 SGEMM >= 70% of cuBLAS SGEMM at N=512")


def test_unknown_case_is_refused_at_validation_naming_the_allowed_ones(recorded: None, tmp_path: Path) -> None:
    with pytest.raises(
        ParamsError, match=r"case 'd08\.e1' is not a case of bench_memory: allowed values are vector_add"
    ):
        run(tmp_path, binary="bench_memory", cases=["d08.e1"])


def test_a_known_case_without_rows_is_an_error(recorded: None, tmp_path: Path) -> None:
    with pytest.raises(RuntimeError, match=r"bench_memory: no rows for cases \['coalescing'\]"):
        run(tmp_path, binary="bench_memory", cases=["coalescing"])


def test_bad_binary_target_and_size_are_refused_naming_the_field(tmp_path: Path) -> None:
    with pytest.raises(ParamsError, match=r"field binary = 'bench_x'"):
        run(tmp_path, binary="bench_x", cases=["sweep"])
    with pytest.raises(ParamsError, match=r"field targets\.0 = .*'speed'"):
        run(tmp_path, binary="bench_gemm", cases=["sweep"], targets=["speed"])
    with pytest.raises(ParamsError, match=r"field only_n = \[0\]: .*sizes must be positive"):
        run(tmp_path, binary="bench_gemm", cases=["sweep"], only_n=[0])
