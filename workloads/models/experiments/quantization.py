"""INT8 quantization of the Day-61 digits CNN (d61.e2): torch dynamic / static (FX) and ORT dynamic / static (QDQ)
against FP32 in the same runtime: accuracy, argmax agreement, size and latency, on CPU.

torch and onnxruntime are imported inside the runner; the quantized engine is checked against this torch build
when the runner starts (which engines exist depends on the build, not on the binding).
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from ailab.contract import Column, Context, Output, Series, Table
from workloads.models.experiments.common import Count, QuantBackend, Timing, latency_table

Method = Literal["torch_dynamic", "torch_static", "ort_dynamic", "ort_static"]  # quantize.METHODS
RUNTIMES = ("torch", "ort")


class QuantizationParams(Timing):
    methods: list[Method] = Field(min_length=1)
    backend: QuantBackend = Field("x86", description="torch quantized engine for static INT8")
    calibration_images: Count = Field(description="training images (never held-out ones) for static calibration")


def quantization(ctx: Context, p: QuantizationParams) -> Output:
    """d61.e2: INT8 (torch dynamic/static FX, ORT dynamic/static QDQ) vs FP32: accuracy, agreement, size, latency."""
    from workloads.models import compress, quantize
    from workloads.models import compress_bench as bench

    quantize.check_backend(p.backend)
    batches, warmup, iters, rounds = list(p.batches), p.warmup, p.iters, p.rounds
    methods = list(p.methods)
    base = compress.teacher()
    calib = compress.split8().x_train[: p.calibration_images]
    fp32_onnx = quantize.export_onnx(base, ctx.workdir / "cnn-fp32.onnx")
    variants = [bench.torch_variant("FP32", base), bench.ort_variant("FP32", fp32_onnx)]
    build = {
        "torch_dynamic": lambda: bench.torch_variant("INT8 dynamic (Linear only)", quantize.torch_dynamic(base)),
        "torch_static": lambda: bench.torch_variant(
            f"INT8 static (FX, {p.backend})", quantize.torch_static(base, calib, p.backend)
        ),
        "ort_dynamic": lambda: bench.ort_variant(
            "INT8 dynamic", quantize.ort_dynamic(fp32_onnx, ctx.workdir / "cnn-int8-dynamic.onnx")
        ),
        "ort_static": lambda: bench.ort_variant(
            "INT8 static (QDQ, per-channel)",
            quantize.ort_static(fp32_onnx, ctx.workdir / "cnn-int8-static.onnx", calib),
        ),
    }
    variants += [build[m]() for m in methods]
    x = compress.split8().x_test
    ref = {v.runtime: v.logits(x) for v in variants[:2]}
    t = Table.of(
        "INT8 vs FP32: accuracy and size",
        [
            ("variant", ""),
            ("runtime", ""),
            ("held-out accuracy", "%"),
            ("argmax agrees with FP32", "%"),
            ("max |logit − FP32 logit|", ""),
            ("size", "KiB"),
            ("size vs FP32", "×"),
            ("size is", ""),
        ],
        caption="FP32 reference = the same CNN in the same runtime; held-out digits.",
    )
    for v in variants:
        lg = v.logits(x)
        fp = next(w for w in variants if w.runtime == v.runtime and w.name == "FP32")
        t.add(
            v.name,
            v.runtime,
            100 * v.accuracy(),
            100 * float((lg.argmax(1) == ref[v.runtime].argmax(1)).mean()),
            float(abs(lg - ref[v.runtime]).max()),
            v.size_bytes / 1024,
            fp.size_bytes / v.size_bytes,
            v.size_what,
        )
    stats = bench.latencies(variants, batches, warmup, iters, rounds)
    bars = []  # one chart per runtime and batch: bar charts need one set of categories per chart
    for rt in RUNTIMES:
        for b in batches:
            bar = Series(f"{rt} p50 latency, batch {b}", x=Column("variant", ""), y=Column("p50", "µs"), kind="bar")
            for v in (v for v in variants if v.runtime == rt):
                bar.point(f"batch {b}", v.name, stats[(v.key, b)].p50_us)  # type: ignore[arg-type]
            bars.append(bar)
    out = Output(
        tables=[t, latency_table("INT8 vs FP32: latency", variants, stats, batches, {"torch": "FP32", "ort": "FP32"})]
    )
    out.series += bars
    out.notes += [
        bench.timing_note(warmup, iters, rounds),
        f"Calibration: {len(calib)} training images (never held-out ones). torch quantized engines available in "
        f"this build: {', '.join(quantize.backends())}; static quantization ran on {p.backend}.",
        "torch dynamic quantization covers nn.Linear only (torch has no dynamic INT8 convolution), so the "
        "convolutions stay FP32 there; ORT dynamic quantization also converts Conv (ConvInteger).",
        "torch.ao.quantization (quantize_dynamic, prepare_fx/convert_fx) is deprecated in favour of torchao, which is "
        "not installed here; it still ships and runs in torch 2.13.",
    ]
    return out
