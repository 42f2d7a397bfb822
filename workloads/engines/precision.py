"""Precision as an engine builder chooses it, done in PyTorch: FP32, TF32, FP16, BF16, INT8 and FP8 GEMMs.

INT8 is W8A8 with symmetric per-row activation and per-output-channel weight scales through `torch._int_mm`
(cuBLASLt int8 GEMM, int32 accumulate); FP8 is E4M3 through `torch._scaled_mm` with per-tensor or per-row
scales (Hopper/Ada). Activations are quantised on the fly; weights once. A `mixed` plan keeps the first and last
layer in FP16 and runs the middle ones in INT8 (TensorRT's per-layer precision constraints, d73.e3).
"""

from __future__ import annotations

import copy
from collections.abc import Sequence

import torch
from torch import nn

from workloads.engines.trt import check_precision

PRECISIONS = ("fp32", "tf32", "fp16", "bf16", "int8", "fp8_tensor", "fp8_row", "mixed_int8_fp16")
FP8_MAX = 448.0  # largest finite float8_e4m3fn


class PrecisionError(ValueError):
    """An unknown precision or one this device cannot run; names the field."""


def check(precision: str, device: str) -> str:
    """`precision` if known and runnable on `device`; FP8 needs sm_89+, INT8 GEMM needs CUDA here."""
    if precision not in PRECISIONS:
        raise PrecisionError(f"field precision = {precision!r}: allowed {', '.join(PRECISIONS)}")
    if precision.startswith("fp8"):
        if device != "cuda":
            raise PrecisionError(
                f"field precision = {precision!r}: FP8 GEMMs need a CUDA device (sm_89+), got {device}"
            )
        check_precision("fp8", torch.cuda.get_device_capability())
    return precision


def _rowwise_int8(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    scale = x.abs().amax(dim=-1, keepdim=True).float().clamp(min=1e-8) / 127.0
    return torch.round(x.float() / scale).clamp(-127, 127).to(torch.int8), scale


class Int8Linear(nn.Module):
    """y = (q(x) @ q(W)ᵀ) · sx · sw + b with int8 operands and int32 accumulation (torch._int_mm on CUDA)."""

    def __init__(self, lin: nn.Linear, out_dtype: torch.dtype = torch.float16) -> None:
        super().__init__()
        q, s = _rowwise_int8(lin.weight.detach())
        self.register_buffer("wq_t", q.t())  # [K, N] column-major view, as cuBLASLt wants it
        self.register_buffer("sw", s.t().contiguous())  # [1, N]
        self.register_buffer("bias", None if lin.bias is None else lin.bias.detach().to(out_dtype))
        self.out_dtype = out_dtype

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shape = x.shape
        x2 = x.reshape(-1, shape[-1])
        xq, sx = _rowwise_int8(x2)
        m = xq.shape[0]
        if xq.is_cuda:
            pad = max(0, 17 - m)  # _int_mm needs more than 16 rows
            if pad:
                xq = torch.cat([xq, xq.new_zeros(pad, xq.shape[1])])
            acc = torch._int_mm(xq, self.wq_t)[:m]
        else:
            acc = xq.int() @ self.wq_t.int()
        y = (acc.float() * sx * self.sw).to(self.out_dtype)
        if self.bias is not None:
            y = y + self.bias
        return y.reshape(*shape[:-1], y.shape[-1])


class FP8Linear(nn.Module):
    """E4M3 x E4M3 → BF16 through torch._scaled_mm; scales per tensor or per row (activations) / column (weights)."""

    def __init__(self, lin: nn.Linear, rowwise: bool) -> None:
        super().__init__()
        w = lin.weight.detach().float()
        sw = (w.abs().amax(dim=1, keepdim=True) if rowwise else w.abs().amax()).clamp(min=1e-12) / FP8_MAX
        self.register_buffer("wq_t", (w / sw).to(torch.float8_e4m3fn).t())  # [K, N] column-major
        self.register_buffer("sw", sw.reshape(1, -1).contiguous() if rowwise else sw.reshape(()))
        self.register_buffer("bias", None if lin.bias is None else lin.bias.detach().to(torch.bfloat16))
        self.rowwise = rowwise

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shape = x.shape
        x2 = x.reshape(-1, shape[-1]).float()
        amax = x2.abs().amax(dim=1, keepdim=True) if self.rowwise else x2.abs().amax()
        sx = amax.clamp(min=1e-12) / FP8_MAX
        xq = (x2 / sx).to(torch.float8_e4m3fn)
        y = torch._scaled_mm(
            xq, self.wq_t, scale_a=sx if self.rowwise else sx.reshape(()), scale_b=self.sw, out_dtype=torch.bfloat16
        )
        if self.bias is not None:
            y = y + self.bias
        return y.reshape(*shape[:-1], y.shape[-1])


def _eligible(lin: nn.Linear, multiple: int) -> bool:
    # cuBLASLt's int8 and FP8 GEMMs need K and N to be multiples of 8 / 16; other layers stay in 16-bit,
    # as TensorRT falls back per layer
    return lin.in_features % multiple == 0 and lin.out_features % multiple == 0


def _swap_linears(model: nn.Module, make: type | object, multiple: int, skip: Sequence[str] = ()) -> nn.Module:
    for name, mod in list(model.named_modules()):
        for child_name, child in list(mod.named_children()):
            full = f"{name}.{child_name}" if name else child_name
            if isinstance(child, nn.Linear) and full not in skip and _eligible(child, multiple):
                setattr(mod, child_name, make(child))  # type: ignore[operator]
    return model


def quantized_layers(model: nn.Module) -> int:
    """How many layers run in INT8/FP8 (the rest stayed in 16-bit)."""
    return sum(isinstance(m, Int8Linear | FP8Linear) for m in model.modules())


def with_precision(model: nn.Module, precision: str, device: str) -> tuple[nn.Module, torch.dtype]:
    """A copy of `model` that runs in `precision`, and the dtype its inputs should have."""
    check(precision, device)
    m = copy.deepcopy(model).to(device).eval()
    if precision in ("fp32", "tf32"):
        return m, torch.float32
    if precision == "fp16":
        return m.half(), torch.float16
    if precision == "bf16":
        return m.to(torch.bfloat16), torch.bfloat16
    if precision == "int8":
        return _swap_linears(m.half(), lambda lin: Int8Linear(lin), 8), torch.float16
    if precision == "mixed_int8_fp16":
        linears = [n for n, x in m.named_modules() if isinstance(x, nn.Linear)]
        keep = (linears[0], linears[-1]) if len(linears) > 2 else ()
        return _swap_linears(m.half(), lambda lin: Int8Linear(lin), 8, skip=keep), torch.float16
    rowwise = precision == "fp8_row"
    return _swap_linears(m.to(torch.bfloat16), lambda lin: FP8Linear(lin, rowwise), 16), torch.bfloat16


class tf32_mode:  # noqa: N801 - context manager
    """TF32 matmuls and convolutions on for `precision == "tf32"`, off otherwise; restores the previous setting."""

    def __init__(self, precision: str) -> None:
        self.on = precision == "tf32"

    def __enter__(self) -> None:
        self.prev = (torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32)
        torch.backends.cuda.matmul.allow_tf32 = self.on
        torch.backends.cudnn.allow_tf32 = self.on

    def __exit__(self, *exc: object) -> None:
        torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = self.prev
