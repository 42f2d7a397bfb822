"""The `bench` runner's selection logic (cases, kernels, only_n, series, targets) on recorded H100 output.

The GPU cannot exist here: tools.run_bench is replaced by the parse of a recorded run of the same binary.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ailab.contract import Context
from workloads.kernels import experiments, jsonl, tools
from workloads.parallel import experiments as parallel

FIX = Path(__file__).parent / "fixtures"


@pytest.fixture
def recorded(monkeypatch: pytest.MonkeyPatch) -> None:
    files = {"bench_gemm": "bench_gemm_sweep.jsonl", "bench_memory": "bench_memory_vector_add_variants.jsonl"}
    monkeypatch.setattr(tools, "run_bench", lambda name, args=(): jsonl.parse((FIX / files[name]).read_text()))


def run(tmp_path: Path, **params: object) -> experiments.Output:
    return experiments.bench(Context("d11.e1", "cuda", quick=True, workdir=tmp_path, params=dict(params)))


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


def test_unknown_case_is_an_error(recorded: None, tmp_path: Path) -> None:
    with pytest.raises(RuntimeError, match=r"bench_memory: no rows for cases \['d99.e9'\]"):
        run(tmp_path, binary="bench_memory", cases=["d99.e9"])


def test_collectives_label_transport_and_merge_paths(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    def line(op: str, size: int, t: float) -> str:
        cols = [
            ["op", ""],
            ["GPUs", ""],
            ["size", "B"],
            ["time (NCCL via CuPy)", "us"],
            ["algbw", "GB/s"],
            ["busbw", "GB/s"],
            ["time (torch.distributed)", "us"],
            ["busbw (torch.distributed)", "GB/s"],
            ["correct", ""],
        ]
        row = [op, 2, size, t, size / t / 1e3, size / t / 1e3, t, size / t / 1e3, True]
        return json.dumps({"case": "collectives", "table": parallel.TABLE, "columns": cols, "row": row})

    text = "\n".join(line(op, s, 10.0 + s / 1e5) for op in ("all_reduce", "all_gather") for s in (1024, 4096))
    parallel._run.cache_clear()
    monkeypatch.setattr(parallel, "_run", lambda quick, path: jsonl.parse(text))
    ctx = Context("d24.e3", "cuda", True, tmp_path, params={"ops": ["all_reduce"], "paths": ["default", "no-p2p"]})
    out = parallel.collectives(ctx)
    (t,) = out.tables
    assert t.columns[0].name == "transport"
    assert {r[1] for r in t.rows} == {"all_reduce"}
    assert len(t.rows) == 4  # 2 sizes x 2 transports
    assert out.series and set(out.series[0].lines) == {"all_reduce"}
