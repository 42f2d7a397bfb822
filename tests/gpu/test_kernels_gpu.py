"""On a GPU host: the quick memory and graph cases run, every kernel's output matches its reference."""

from __future__ import annotations

import math

import pytest

from ailab import host

pytestmark = [pytest.mark.gpu, pytest.mark.skipif(not host.gpus(), reason="no NVIDIA GPU on this host")]


def test_quick_memory_cases_are_correct() -> None:
    from workloads.kernels import tools

    p = tools.run_bench("bench_memory", ("--quick",))
    errs = [r.get("rel. error") for r in p.records if r.get("rel. error") is not None]
    assert errs and all(math.isfinite(e) and e < 1e-5 for e in errs)


def test_quick_gemm_sweep_is_correct() -> None:
    from workloads.kernels import tools

    p = tools.run_bench("bench_gemm", ("--quick", "--case", "sweep"))
    errs = [r.get("rel. error") for r in p.rows(case="sweep")]
    assert errs and all(e < 1e-2 for e in errs)  # fp16 inputs: up to 1e-2; fp32 far below


@pytest.mark.parametrize("case", ["tensor_core_gemm", "gemm_shapes", "wmma_vs_tiling"])
def test_quick_gemm_cases_are_correct(case: str) -> None:
    """The autotuned warp-tiled SGEMM, both wgmma kernels (the persistent one also at M=64) and the WMMA kernels."""
    from workloads.kernels import tools

    p = tools.run_bench("bench_gemm", ("--quick", "--case", case))
    rows = p.rows(case=case)
    errs = {r.get("kernel") or r.get("configuration"): r.get("rel. error") for r in rows}
    assert rows and all(math.isfinite(e) and e < 1e-2 for e in errs.values()), errs
    if case == "gemm_shapes":
        assert any(r.get("M") == 64 and "persistent" in r.get("kernel") for r in rows)


def test_quick_graph_cases_report_latency_percentiles_in_order() -> None:
    from workloads.kernels import tools

    p = tools.run_bench("bench_graphs", ("--quick",))
    for r in p.rows(case="plain_launches") + p.rows(case="graph_vs_plain"):
        assert 0 < r.get("p50") <= r.get("p90") <= r.get("p99")
