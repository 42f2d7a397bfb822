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
