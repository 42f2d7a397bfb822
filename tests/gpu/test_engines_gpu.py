"""GPU checks of the engine substitutes' kernels (skipped without CUDA): custom-op kernels against the reference,
INT8/FP8 linears against FP32."""

from __future__ import annotations

import pytest
import torch

pytestmark = pytest.mark.gpu
if not torch.cuda.is_available():
    pytest.skip("needs a CUDA GPU", allow_module_level=True)


@pytest.mark.parametrize("impl", ["cuda", "triton"])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float16])
def test_custom_op_kernels_match_reference(impl, dtype):
    from workloads.engines import custom_ops as co

    for shape in [(1,), (1023,), (3, 5, 7), (64, 4097)]:
        x = torch.randn(*shape, device="cuda", dtype=dtype) * 4
        for act in ("swish", "mish"):
            y = co.OPS[act](x, impl)
            tol = 1e-2 if dtype == torch.float16 else 1e-4
            assert torch.allclose(y.float(), co.reference(x, act).float(), atol=tol, rtol=tol), (impl, act, shape)


@pytest.mark.parametrize("precision", ["int8", "fp8_tensor", "fp8_row"])
def test_quantized_linears_stay_close_to_fp32(precision):
    from workloads.engines.precision import with_precision

    if precision.startswith("fp8") and torch.cuda.get_device_capability() < (8, 9):
        pytest.skip("FP8 needs sm_89+")
    torch.manual_seed(0)
    m = torch.nn.Sequential(torch.nn.Linear(256, 512), torch.nn.ReLU(), torch.nn.Linear(512, 256)).cuda()
    x = torch.randn(64, 256, device="cuda")
    q, dt = with_precision(m, precision, "cuda")
    ref = m(x)
    rel = ((q(x.to(dt)).float() - ref).abs().max() / ref.abs().max()).item()
    assert rel < 0.1, rel
