"""Every compressed variant of the Day-61 digits CNN side by side (d61.e5): pruned, quantized, distilled and
combined, before/after: accuracy, size, latency at each batch and speedup vs the FP32 CNN of the same runtime.

torch and onnxruntime are imported inside the runner.
"""

from __future__ import annotations

from pydantic import Field

from ailab.contract import Column, Context, Output, Series, Table
from workloads.models.experiments.common import Count, Fraction, Positive, QuantBackend, Timing, Weight


class SummaryParams(Timing):
    sparsity: Fraction = Field(description="unstructured global L1: fraction of conv/linear weights zeroed")
    channel_amount: Fraction = Field(description="structured L1: fraction of conv1/conv2 filters, fc1 neurons removed")
    finetune_epochs: Count
    backend: QuantBackend = "x86"
    calibration_images: Count
    temperature: Positive = Field(description="distillation temperature T")
    alpha: Weight
    student_epochs: Count


def summary(ctx: Context, p: SummaryParams) -> Output:
    """d61.e5: every compressed variant before/after: accuracy, size, latency at each batch, speedup vs FP32."""
    from workloads.models import compress, distill_demo, quantize
    from workloads.models import compress_bench as bench

    quantize.check_backend(p.backend)
    batches, warmup, iters, rounds = list(p.batches), p.warmup, p.iters, p.rounds
    sparsity, amount, ft = p.sparsity, p.channel_amount, p.finetune_epochs
    backend, temp, alpha = p.backend, p.temperature, p.alpha
    base = compress.teacher()
    calib = compress.split8().x_train[: p.calibration_images]
    sparse = compress.make_permanent(compress.fit(compress.prune_unstructured(base, sparsity), ft, compress.SEED))
    narrow = compress.fit(compress.prune_channels(base, amount), ft, compress.SEED)
    se, st = p.student_epochs, compress.SEED
    student = distill_demo.train_student(st, None, alpha, se)[0]
    distilled = distill_demo.train_student(st, temp, alpha, se, base)[0]
    names = {
        "base": "FP32 baseline CNN",
        "sparse": f"unstructured {100 * sparsity:.0f}% + fine-tune",
        "narrow": f"structured {100 * amount:.0f}% channels + fine-tune",
        "student": "student MLP (CE only)",
        "distilled": f"student MLP distilled (T={temp:g})",
    }
    fp32 = {k: quantize.export_onnx(m, ctx.workdir / f"{k}.onnx") for k, m in [("base", base), ("narrow", narrow)]}
    variants = [
        bench.torch_variant(names["base"], base),
        bench.torch_variant(names["sparse"], sparse),
        bench.torch_variant(names["narrow"], narrow),
        bench.torch_variant("INT8 dynamic (Linear only)", quantize.torch_dynamic(base)),
        bench.torch_variant(f"INT8 static (FX, {backend})", quantize.torch_static(base, calib, backend)),
        bench.torch_variant(f"{names['narrow']} + INT8 static", quantize.torch_static(narrow, calib, backend)),
        bench.torch_variant(names["student"], student),
        bench.torch_variant(names["distilled"], distilled),
        bench.ort_variant(names["base"], fp32["base"]),
        bench.onnx_of(names["sparse"], sparse, ctx.workdir),
        bench.ort_variant(names["narrow"], fp32["narrow"]),
        bench.ort_variant("INT8 dynamic", quantize.ort_dynamic(fp32["base"], ctx.workdir / "base-int8-dyn.onnx")),
        bench.ort_variant(
            "INT8 static (QDQ)", quantize.ort_static(fp32["base"], ctx.workdir / "base-int8-qdq.onnx", calib)
        ),
        bench.ort_variant(
            f"{names['narrow']} + INT8 static (QDQ)",
            quantize.ort_static(fp32["narrow"], ctx.workdir / "narrow-int8-qdq.onnx", calib),
        ),
        bench.onnx_of(names["distilled"], distilled, ctx.workdir),
    ]
    stats = bench.latencies(variants, batches, warmup, iters, rounds)
    ref = {v.runtime: v for v in variants if v.name == names["base"]}
    cols = [("variant", ""), ("runtime", ""), ("held-out accuracy", "%"), ("size", "KiB"), ("deflated size", "KiB")]
    cols += [("size vs baseline", "×")] + [(f"p50 batch {b}", "µs") for b in batches]
    cols += [(f"speedup batch {b}", "×") for b in batches] + [("size is", "")]
    t = Table.of(
        "compression summary: before/after",
        cols,
        caption="Baseline = the FP32 CNN in the same runtime. Size: torch.save(state_dict) for torch, the .onnx "
        f"file for ORT; deflated = the same bytes through zlib level {compress.DEFLATE_LEVEL} "
        "(where pruned zeros pay off).",
    )
    scatter = Series(
        "accuracy vs latency", x=Column(f"p50 batch {batches[-1]}", "µs"), y=Column("accuracy", "%"), kind="scatter"
    )
    for v in variants:
        acc, r = v.accuracy(), ref[v.runtime]
        p50 = [stats[(v.key, b)].p50_us for b in batches]
        t.add(
            v.name,
            v.runtime,
            100 * acc,
            v.size_bytes / 1024,
            v.deflated_bytes / 1024,
            r.size_bytes / v.size_bytes,
            *p50,
            *(stats[(r.key, b)].p50_us / p for b, p in zip(batches, p50, strict=True)),
            v.size_what,
        )
        scatter.point(v.runtime, p50[-1], 100 * acc)
    out = Output(tables=[t], series=[scatter])
    out.notes += [
        bench.timing_note(warmup, iters, rounds),
        f"Settings: unstructured global L1 at {100 * sparsity:.0f}% and structured L1 removing {100 * amount:.0f}% of "
        f"conv1/conv2 filters and fc1 neurons, each fine-tuned {ft} epochs; INT8 calibrated on {len(calib)} training "
        f"images ({backend} engine for torch); students: {se} epochs, seed {st}, α={alpha:g} (see d61.e3/e4 for the "
        "spread over seeds: one seed's accuracy difference between students is not a result on its own).",
    ]
    return out
