"""Precision study: accuracy on held-out digits and latency of the same model, plus ResNet-50-shaped speed.

Every row's speed-up is a ratio to FP32 measured in the same run; accuracy is beside speed in the same row.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass

import torch

from workloads.engines.data import digits
from workloads.engines.models import accuracy, resnet50_shaped, trained_mlp
from workloads.engines.precision import quantized_layers, tf32_mode, with_precision
from workloads.engines.timing import time_calls


@dataclass
class PrecisionRow:
    model: str
    precision: str
    batch: int
    quantized_layers: int
    accuracy_pct: float | None
    top1_agree_pct: float | None  # same predicted class as FP32, over the held-out set
    max_abs_logit_err: float | None
    p50_ms: float
    p95_ms: float
    p99_ms: float
    throughput: float  # samples/s
    speedup_vs_fp32: float = 0.0

    def as_dict(self) -> dict:
        return asdict(self)


def mlp_rows(
    precisions: Sequence[str], device: str, width: int, epochs: int, batch: int, iters: int
) -> list[PrecisionRow]:
    """The digits MLP trained here in FP32, run in each precision: accuracy and latency at `batch`."""
    base = trained_mlp(width, epochs, device)
    d = digits()
    x_test = torch.from_numpy(d.x_test).to(device)
    with torch.no_grad(), tf32_mode("fp32"):
        ref = base(x_test).float()
    reps = -(-batch // len(x_test))
    x_load = x_test.repeat(reps, 1)[:batch]
    rows = []
    for p in precisions:
        model, dt = with_precision(base, p, device)
        with torch.no_grad(), tf32_mode(p):
            out = model(x_test.to(dt)).float()
            xb = x_load.to(dt)
            lat = time_calls(lambda m=model, xb=xb: m(xb), device, warmup=5, iters=iters)
        rows.append(
            PrecisionRow(
                f"digits-mlp-{width}",
                p,
                batch,
                quantized_layers(model),
                accuracy(out, d.y_test),
                float((out.argmax(1) == ref.argmax(1)).float().mean() * 100),
                float((out - ref).abs().max()),
                lat.p50_ms,
                lat.p95_ms,
                lat.p99_ms,
                lat.throughput(batch),
            )
        )
    return _ratios(rows)


def resnet_rows(precisions: Sequence[str], device: str, quick: bool, batch: int, iters: int) -> list[PrecisionRow]:
    """ResNet-50-shaped net (random weights, 224×224, channels-last on CUDA): latency per precision."""
    base = resnet50_shaped(quick)
    size = 64 if quick else 224
    rows = []
    for p in precisions:
        model, dt = with_precision(base, p, device)
        fmt = torch.channels_last if device == "cuda" else torch.contiguous_format
        model = model.to(memory_format=fmt)
        x = torch.randn(batch, 3, size, size, device=device).to(dt).contiguous(memory_format=fmt)
        with torch.no_grad(), tf32_mode(p):
            lat = time_calls(lambda m=model, x=x: m(x), device, warmup=3, iters=iters)
        name = "smallcnn-quick" if quick else "resnet50"
        rows.append(
            PrecisionRow(
                name,
                p,
                batch,
                quantized_layers(model),
                None,
                None,
                None,
                lat.p50_ms,
                lat.p95_ms,
                lat.p99_ms,
                lat.throughput(batch),
            )
        )
    return _ratios(rows)


def _ratios(rows: list[PrecisionRow]) -> list[PrecisionRow]:
    base = next((r for r in rows if r.precision == "fp32"), None)
    for r in rows:
        r.speedup_vs_fp32 = round(base.p50_ms / r.p50_ms, 3) if base else 0.0
    return rows
