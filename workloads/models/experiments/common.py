"""Typed parameter pieces shared by the models-area runners (not a runner): ORT settings, timing and students.

Kept free of torch/onnxruntime so the catalogue can import every runner module cheaply; the allowed values mirror
the library's constants (ortbench.LEVELS, custom_fn.VARIANTS, folding.FOLD_EXPORTERS, quantize.METHODS) and a test
keeps them equal.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Literal

from pydantic import Field

from ailab.contract import Params, Table

if TYPE_CHECKING:
    from workloads.models.compress_bench import Variant

# 13 is the curriculum's oldest opset; 20 the TorchScript exporter's maximum in torch 2.13
Opset = Annotated[int, Field(strict=True, ge=13, le=20)]
Level = Literal["disabled", "basic", "extended", "all"]  # ORT GraphOptimizationLevel, weakest first
Count = Annotated[int, Field(strict=True, ge=1)]
Seed = Annotated[int, Field(strict=True, ge=0)]
Fraction = Annotated[float, Field(strict=True, ge=0, lt=1)]  # pruning amounts: 1.0 would remove everything
Weight = Annotated[float, Field(strict=True, ge=0, le=1)]  # mixing weight of a loss term
Positive = Annotated[float, Field(strict=True, gt=0)]
# torch quantized engines; which of them this torch build offers is checked when the runner starts
QuantBackend = Literal["x86", "fbgemm", "qnnpack", "onednn"]


class OrtTiming(Params):
    """One ORT CPU session per setting, timed round-robin: warm-up calls, then timed calls in rounds."""

    warmup: Count = Field(description="untimed calls per setting before timing")
    iters: Count = Field(description="timed session.run calls per setting")
    rounds: Count = Field(1, description="interleaved rounds the timed calls are split into")
    intra_op_num_threads: Count = 1
    inter_op_num_threads: Count = 1


class Timing(Params):
    """Latency of the compressed variants (torch eager and ORT, one thread): p50 per call at each batch size."""

    batches: list[Count] = Field(min_length=1, description="batch sizes timed")
    warmup: Count
    iters: Count
    rounds: Count


class Students(Params):
    """Student MLPs trained per seed, distilled from the baseline CNN or trained on labels alone (the control)."""

    alpha: Weight = Field(description="weight of the soft-target (KL) term; 1 - alpha weighs cross-entropy")
    epochs: Count
    seeds: list[Seed] = Field(min_length=1)


def latency_table(name: str, variants: list[Variant], stats: dict, batches: list[int], base: dict) -> Table:
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
