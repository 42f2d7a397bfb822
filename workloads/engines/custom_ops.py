"""Swish and Mish as custom operators (the stand-in for TensorRT plugins): registered with `torch.library`, with a
CPU reference, a CUDA C++ kernel (trt_plugins/act_kernels.cuh, the same source the TensorRT plugins compile; here
compiled at first use by NVRTC through CuPy) and a Triton-lang kernel.

`ailab::swish(x, impl)` and `ailab::mish(x, impl)` take any shape (the op flattens; d12.e3/d66.e1's dynamic dims),
have a fake (meta) implementation so torch.compile and torch.export trace them, and keep compiled kernels in a
per-process cache keyed by (kernel, dtype): the first call pays the compile, later calls do not (d12.e2).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

IMPLS = ("reference", "cuda", "triton")
_CACHE: dict[tuple[str, str, torch.dtype], Any] = {}
_LOCK = threading.Lock()  # the cache is filled once per key even when threads race on first use


class CustomOpError(ValueError):
    """A bad custom-op call; names the field."""


def reference(x: torch.Tensor, act: str) -> torch.Tensor:
    """Swish/Mish from native ops, computed in float32 (what the kernels are checked against)."""
    xf = x.float()
    y = xf * torch.sigmoid(xf) if act == "swish" else xf * torch.tanh(torch.nn.functional.softplus(xf))
    return y.to(x.dtype)


# the kernels' one source, shared with the TensorRT plugins (trt_plugins/act_plugin.cpp via act_launch.cu)
KERNEL_SOURCE = Path(__file__).with_name("trt_plugins") / "act_kernels.cuh"


def kernel_name(act: str, dtype: torch.dtype) -> str:
    """The extern "C" kernel of act_kernels.cuh for `act` on `dtype` storage (swish_f32, mish_f16, ...)."""
    if act not in ("swish", "mish"):
        raise CustomOpError(f"field act = {act!r}: allowed swish, mish")
    if dtype not in (torch.float32, torch.float16):
        raise CustomOpError(f"field x.dtype = {dtype}: the CUDA kernel takes float32 or float16")
    return f"{act}_{'f32' if dtype == torch.float32 else 'f16'}"


def _cuda_kernel(act: str, dtype: torch.dtype) -> Any:
    key = ("cuda", act, dtype)
    if key not in _CACHE:
        with _LOCK:
            if key not in _CACHE:
                import cupy

                src = KERNEL_SOURCE.read_text()
                kern = cupy.RawModule(code=src, options=("--use_fast_math",)).get_function(kernel_name(act, dtype))
                kern.compile() if hasattr(kern, "compile") else None
                _CACHE[key] = kern
    return _CACHE[key]


def _run_cuda(x: torch.Tensor, act: str) -> torch.Tensor:
    import cupy

    kern = _cuda_kernel(act, x.dtype)
    xc = x.contiguous()
    y = torch.empty_like(xc)
    n = xc.numel()
    if n:
        with cupy.cuda.ExternalStream(torch.cuda.current_stream().cuda_stream):
            blocks = min(65535, (n + 255) // 256)
            kern((blocks,), (256,), (cupy.uint64(xc.data_ptr()), cupy.uint64(y.data_ptr()), cupy.int64(n)))
    return y


def _triton_kernel() -> Any:
    key = ("triton", "both", torch.float32)
    if key not in _CACHE:
        with _LOCK:
            if key not in _CACHE:
                import triton
                import triton.language as tl

                @triton.jit
                def act_kernel(X, Y, n, MISH: tl.constexpr, BLOCK: tl.constexpr):  # noqa: N803
                    offs = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
                    mask = offs < n
                    x = tl.load(X + offs, mask=mask).to(tl.float32)
                    if MISH:
                        sp = tl.where(x > 20.0, x, tl.log(1.0 + tl.exp(x)))
                        e = tl.exp(-2.0 * sp)  # sp >= 0, so tanh(sp) = (1 - e) / (1 + e) is stable
                        y = x * (1.0 - e) / (1.0 + e)
                    else:
                        y = x * tl.sigmoid(x)
                    tl.store(Y + offs, y.to(Y.dtype.element_ty), mask=mask)

                _CACHE[key] = act_kernel
    return _CACHE[key]


def _run_triton(x: torch.Tensor, act: str) -> torch.Tensor:
    kern = _triton_kernel()
    xc = x.contiguous()
    y = torch.empty_like(xc)
    n = xc.numel()
    if n:
        block = 1024
        kern[((n + block - 1) // block,)](xc, y, n, MISH=act == "mish", BLOCK=block)
    return y


def _dispatch(x: torch.Tensor, impl: str, act: str) -> torch.Tensor:
    if impl not in IMPLS:
        raise CustomOpError(f"field impl = {impl!r}: allowed {', '.join(IMPLS)}")
    if impl == "reference" or not x.is_cuda:
        return reference(x, act)
    return _run_cuda(x, act) if impl == "cuda" else _run_triton(x, act)


@torch.library.custom_op("ailab::swish", mutates_args=())
def swish(x: torch.Tensor, impl: str = "triton") -> torch.Tensor:
    """x · sigmoid(x), elementwise, any shape; `impl` picks the kernel on CUDA (CPU always runs the reference)."""
    return _dispatch(x, impl, "swish")


@torch.library.custom_op("ailab::mish", mutates_args=())
def mish(x: torch.Tensor, impl: str = "triton") -> torch.Tensor:
    """x · tanh(softplus(x)), elementwise, any shape; `impl` as for swish."""
    return _dispatch(x, impl, "mish")


@swish.register_fake
def _(x: torch.Tensor, impl: str = "triton") -> torch.Tensor:
    return torch.empty_like(x)


@mish.register_fake
def _(x: torch.Tensor, impl: str = "triton") -> torch.Tensor:
    return torch.empty_like(x)


OPS: dict[str, Callable[..., torch.Tensor]] = {"swish": swish, "mish": mish}


class ActBlock(torch.nn.Module):
    """Linear → custom activation → Linear: a small model that carries the op through export and compile."""

    def __init__(self, act: str, impl: str, dim: int = 256) -> None:
        super().__init__()
        if act not in OPS:
            raise CustomOpError(f"field act = {act!r}: allowed {', '.join(OPS)}")
        self.act, self.impl = act, impl
        self.a = torch.nn.Linear(dim, dim)
        self.b = torch.nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        op = torch.ops.ailab.swish if self.act == "swish" else torch.ops.ailab.mish
        return self.b(op(self.a(x), self.impl))


def cache_clear() -> None:
    """Forget compiled kernels (the next call on each key compiles again)."""
    with _LOCK:
        _CACHE.clear()
