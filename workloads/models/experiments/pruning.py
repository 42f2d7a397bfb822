"""Pruning of the Day-61 digits CNN (d61.e1): global magnitude (unstructured) and L1 channel (structured) pruning,
each fine-tuned: accuracy, size and latency in torch eager and ONNX Runtime, on CPU.

Accuracy is on the 450 held-out digits (one image = 0.22 percentage points); sizes and latency are defined in
compress.py and compress_bench.py. torch and onnxruntime are imported inside the runner.
"""

from __future__ import annotations

import copy
from typing import Literal

from pydantic import Field

from ailab.contract import Column, Context, Output, Series, Table
from workloads.models.experiments.common import Count, Fraction, Timing, latency_table


class PruningParams(Timing):
    methods: list[Literal["unstructured", "structured"]] = Field(min_length=1)
    sparsities: list[Fraction] = Field(min_length=1, description="fraction of all conv/linear weights zeroed")
    channel_amounts: list[Fraction] = Field(
        min_length=1, description="fraction of conv1/conv2 filters and fc1 neurons removed"
    )
    finetune_epochs: Count


def pruning(ctx: Context, p: PruningParams) -> Output:
    """d61.e1: global magnitude (unstructured) and L1 channel (structured) pruning: accuracy, size, latency."""
    from workloads.models import compress
    from workloads.models import compress_bench as bench

    batches, warmup, iters, rounds = list(p.batches), p.warmup, p.iters, p.rounds
    methods, ft = list(p.methods), p.finetune_epochs
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
            m.state_bytes / 1024,
            m.deflated_bytes / 1024,
        )
        acc_series.point(f"{method}{' + fine-tune' if epochs else ''}", 100 * target, 100 * m.accuracy)

    record("none", 0.0, base, 0)
    for method in methods:
        for target in p.sparsities if method == "unstructured" else p.channel_amounts:
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
    lt = latency_table(
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
