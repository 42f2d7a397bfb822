"""Runners of Day 61 (d61.e1–e5): pruning, INT8 quantization and distillation of the digits CNN, measured on CPU.

Each runner checks all its parameters before training anything. Accuracy is on the 450 held-out digits
(one image = 0.22 percentage points); sizes and latency are defined in compress.py and compress_bench.py.
"""

from __future__ import annotations

import copy

from ailab.contract import Column, Context, Output, Series, Table
from workloads.models import compress, distill_demo, quantize
from workloads.models import compress_bench as bench

PRUNE_METHODS = ("unstructured", "structured")
RUNTIMES = ("torch", "ort")


def timing_params(ctx: Context) -> tuple[list[int], int, int, int]:
    """(batches, warmup, iters, rounds) of the latency measurement, checked."""
    compress.check_positive("batches", ctx.param("batches"), integer=True)
    for name in ("warmup", "iters", "rounds"):
        compress.check_positive(name, [ctx.param(name)], integer=True)
    return (
        [int(b) for b in ctx.param("batches")],
        int(ctx.param("warmup")),
        int(ctx.param("iters")),
        int(ctx.param("rounds")),
    )


def _kib(n: int) -> float:
    return n / 1024


def _latency_table(name: str, variants: list[bench.Variant], stats: dict, batches: list[int], base: dict) -> Table:
    """p50 per batch and speedup vs `base[runtime]` (the FP32 baseline of the same runtime)."""
    cols = [("variant", ""), ("runtime", "")]
    cols += [(f"p50 batch {b}", "µs") for b in batches] + [(f"speedup batch {b}", "×") for b in batches]
    t = Table.of(name, cols, caption="Speedup = p50 of the FP32 baseline CNN in the same runtime / p50 of the variant.")
    for v in variants:
        p50 = [stats[(v.key, b)].p50_us for b in batches]
        t.add(
            v.name,
            v.runtime,
            *p50,
            *(stats[(f"{v.runtime}/{base[v.runtime]}", b)].p50_us / p for b, p in zip(batches, p50, strict=True)),
        )
    return t


def pruning(ctx: Context) -> Output:
    """d61.e1: global magnitude (unstructured) and L1 channel (structured) pruning: accuracy, size, latency."""
    compress.check_choice("methods", ctx.param("methods"), PRUNE_METHODS)
    compress.check_fraction("sparsities", ctx.param("sparsities"))
    compress.check_fraction("channel_amounts", ctx.param("channel_amounts"))
    compress.check_positive("finetune_epochs", [ctx.param("finetune_epochs")], integer=True)
    batches, warmup, iters, rounds = timing_params(ctx)
    methods, ft = list(ctx.param("methods")), int(ctx.param("finetune_epochs"))
    base = compress.teacher()
    out = Output()
    t = Table.of(
        "pruning: accuracy and size",
        [
            ("method", ""),
            ("target", "%"),
            ("fine-tuned", "epochs"),
            ("zero weights", "%"),
            ("parameters", "params"),
            ("non-zero parameters", "params"),
            ("held-out accuracy", "%"),
            ("state_dict (torch.save)", "KiB"),
            (f"state_dict deflated (zlib level {compress.DEFLATE_LEVEL})", "KiB"),
        ],
        caption="Target: fraction of all conv/linear weights (unstructured, global L1) or of the filters/neurons of "
        "conv1, conv2 and fc1 removed (structured, L1 norm). Zeros shrink only the deflated file.",
    )
    acc_series = Series("accuracy vs pruning target", x=Column("target", "%"), y=Column("held-out accuracy", "%"))
    variants = [bench.torch_variant("dense baseline", base), bench.onnx_of("dense baseline", base, ctx.workdir)]

    def record(method: str, target: float, model, epochs: int) -> None:
        m = compress.Measured.of(model)
        t.add(
            method,
            100 * target,
            epochs,
            100 * compress.weight_sparsity(model),
            m.params,
            m.nonzero_params,
            100 * m.accuracy,
            _kib(m.state_bytes),
            _kib(m.deflated_bytes),
        )
        acc_series.point(f"{method}{' + fine-tune' if epochs else ''}", 100 * target, 100 * m.accuracy)

    record("none", 0.0, base, 0)
    for method in methods:
        for target in ctx.param("sparsities" if method == "unstructured" else "channel_amounts"):
            if method == "unstructured":
                pruned = compress.prune_unstructured(base, target)
                record(method, target, compress.make_permanent(compress.prune_unstructured(base, target)), 0)
                tuned = compress.make_permanent(compress.fit(pruned, ft, compress.SEED))  # masks keep the zeros
            else:
                pruned = compress.prune_channels(base, target)
                record(method, target, pruned, 0)
                tuned = compress.fit(copy.deepcopy(pruned), ft, compress.SEED)
            record(method, target, tuned, ft)
            label = f"{method} {100 * target:.0f}% + fine-tune"
            variants += [bench.torch_variant(label, tuned), bench.onnx_of(label, tuned, ctx.workdir)]
    out.tables.append(t)
    stats = bench.latencies(variants, batches, warmup, iters, rounds)
    lt = _latency_table(
        "pruning: latency", variants, stats, batches, {"torch": "dense baseline", "ort": "dense baseline"}
    )
    out.tables.append(lt)
    out.series.append(acc_series)
    out.notes += [
        bench.timing_note(warmup, iters, rounds),
        "Unstructured pruning leaves the weight tensors dense (zeros are still stored and multiplied): torch eager "
        "and ORT run the same dense kernels, so any latency difference to the baseline is timing noise, and the "
        "saved state_dict has the same size; only a compressed file gains from the zeros. Structured pruning "
        "rebuilds smaller layers, so parameters, file size and the work per call shrink together.",
        f"Fine-tuning: {ft} epochs of the baseline recipe (Adam, lr {compress.LEARNING_RATE}) on the training split; "
        "unstructured masks stay attached while fine-tuning, so pruned weights stay zero.",
    ]
    return out


def quantization(ctx: Context) -> Output:
    """d61.e2: INT8 (torch dynamic/static FX, ORT dynamic/static QDQ) vs FP32: accuracy, agreement, size, latency."""
    compress.check_choice("methods", ctx.param("methods"), quantize.METHODS)
    quantize.check_backend(str(ctx.param("backend")))
    compress.check_positive("calibration_images", [ctx.param("calibration_images")], integer=True)
    batches, warmup, iters, rounds = timing_params(ctx)
    methods = list(ctx.param("methods"))
    base = compress.teacher()
    calib = compress.split8().x_train[: int(ctx.param("calibration_images"))]
    fp32_onnx = quantize.export_onnx(base, ctx.workdir / "cnn-fp32.onnx")
    variants = [bench.torch_variant("FP32", base), bench.ort_variant("FP32", fp32_onnx)]
    build = {
        "torch_dynamic": lambda: bench.torch_variant("INT8 dynamic (Linear only)", quantize.torch_dynamic(base)),
        "torch_static": lambda: bench.torch_variant(
            f"INT8 static (FX, {ctx.param('backend')})", quantize.torch_static(base, calib, str(ctx.param("backend")))
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
            _kib(v.size_bytes),
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
        tables=[t, _latency_table("INT8 vs FP32: latency", variants, stats, batches, {"torch": "FP32", "ort": "FP32"})]
    )
    out.series += bars
    out.notes += [
        bench.timing_note(warmup, iters, rounds),
        f"Calibration: {len(calib)} training images (never held-out ones). torch quantized engines available in "
        f"this build: {', '.join(quantize.backends())}; static quantization ran on {ctx.param('backend')}.",
        "torch dynamic quantization covers nn.Linear only (torch has no dynamic INT8 convolution), so the "
        "convolutions stay FP32 there; ORT dynamic quantization also converts Conv (ConvInteger).",
        "torch.ao.quantization (quantize_dynamic, prepare_fx/convert_fx) is deprecated in favour of torchao, which is "
        "not installed here; it still ships and runs in torch 2.13.",
    ]
    return out


def summary(ctx: Context) -> Output:
    """d61.e5: every compressed variant before/after: accuracy, size, latency at each batch, speedup vs FP32."""
    compress.check_fraction("sparsity", [ctx.param("sparsity")])
    compress.check_fraction("channel_amount", [ctx.param("channel_amount")])
    compress.check_positive("finetune_epochs", [ctx.param("finetune_epochs")], integer=True)
    quantize.check_backend(str(ctx.param("backend")))
    compress.check_positive("calibration_images", [ctx.param("calibration_images")], integer=True)
    compress.check_positive("temperature", [ctx.param("temperature")])
    compress.check_fraction("alpha", [ctx.param("alpha")], lo_inclusive=False)
    compress.check_positive("student_epochs", [ctx.param("student_epochs")], integer=True)
    batches, warmup, iters, rounds = timing_params(ctx)
    sparsity, amount, ft = (
        float(ctx.param("sparsity")),
        float(ctx.param("channel_amount")),
        int(ctx.param("finetune_epochs")),
    )
    backend, temp, alpha = str(ctx.param("backend")), float(ctx.param("temperature")), float(ctx.param("alpha"))
    base = compress.teacher()
    calib = compress.split8().x_train[: int(ctx.param("calibration_images"))]
    sparse = compress.make_permanent(compress.fit(compress.prune_unstructured(base, sparsity), ft, compress.SEED))
    narrow = compress.fit(compress.prune_channels(base, amount), ft, compress.SEED)
    se, st = int(ctx.param("student_epochs")), compress.SEED
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
