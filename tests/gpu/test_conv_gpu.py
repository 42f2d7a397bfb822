"""On a GPU host: every d65 convolution (direct, im2col + GEMM, Winograd; cuDNN through torch) matches float64."""

from __future__ import annotations

import math

import pytest

from ailab import host

pytestmark = [pytest.mark.gpu, pytest.mark.skipif(not host.gpus(), reason="no NVIDIA GPU on this host")]

# fp32 sums of 9*C products (C <= 64 in --quick) land near 1e-7 relative; a wrong tap or tile is O(1)
BOUND = 1e-4


def test_quick_conv_kernels_match_the_float64_reference() -> None:
    from workloads.kernels import tools

    p = tools.run_bench("bench_conv", ("--quick",))
    rows = p.rows(case="conv")
    assert {r.get("implementation") for r in rows} == {"direct", "im2col + GEMM", "Winograd F(2x2,3x3)"}
    assert any(r.get("H") % 2 for r in rows)  # an odd size: Winograd's partial last tile is exercised
    for r in rows:
        err = r.get("rel. error")
        assert math.isfinite(err) and err < BOUND, (r.get("layer"), r.get("implementation"), r.get("GEMM"), err)


def test_cudnn_matches_the_float64_reference() -> None:
    torch = pytest.importorskip("torch")
    if not torch.cuda.is_available():
        pytest.skip("torch has no CUDA here")
    from workloads.kernels import cudnn

    recs = cudnn.measure([cudnn.Shape(2, 32, 32, 14, 14), cudnn.Shape(2, 3, 16, 15, 15)], min_reps=3)
    assert len(recs) == 2
    assert all(math.isfinite(r.get("rel. error")) and r.get("rel. error") < BOUND for r in recs)
