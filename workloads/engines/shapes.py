"""Dynamic shapes the way an engine's optimisation profiles handle them, done with torch.compile:
one dynamic compiled model vs one static compiled variant per batch bucket (inputs padded up to the bucket).

The stand-in for a TensorRT profile min/opt/max is Inductor's dynamic compile over the batch dimension (one
kernel set for all sizes, tuned for none) and for per-profile engines, static compiled variants per bucket
(each tuned for its size, holding its own memory). A bad bucket choice pads small batches up to a large bucket.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass

import torch
from torch import nn

from workloads.engines.profiles import bucket_for
from workloads.engines.timing import time_calls, wall_once


@dataclass
class ShapeRow:
    variant: str  # dynamic | static-b<bucket> | eager
    batch: int  # requested batch
    run_batch: int  # batch actually run (bucket, after padding)
    p50_ms: float
    p95_ms: float
    throughput: float  # requested samples/s
    vs_dynamic: float = 0.0  # dynamic p50 / this p50 (>1: faster than dynamic)

    def as_dict(self) -> dict:
        return asdict(self)


@dataclass
class Variant:
    name: str
    fn: Callable[[torch.Tensor], torch.Tensor]
    compile_s: float  # first call: compile + first run
    # memory per variant is measured apart, one fresh process per variant (workloads/engines/variant_memory.py):
    # in this process the caching allocator already holds what earlier variants used


class ShapeLab:
    """Compiled variants of one model for one sample shape; compiles lazily and keeps them (as engines are kept)."""

    def __init__(self, model: nn.Module, sample: tuple[int, ...], device: str, dtype: torch.dtype, mode: str | None):
        self.model, self.sample, self.device, self.dtype, self.mode = model, sample, device, dtype, mode
        self.variants: dict[str, Variant] = {}

    def x(self, batch: int) -> torch.Tensor:
        return torch.randn(batch, *self.sample, device=self.device, dtype=self.dtype)

    def dynamic(self, hint_batches: Sequence[int]) -> Variant:
        if "dynamic" not in self.variants:
            fn = torch.compile(self.model, dynamic=True, mode=self.mode)
            with torch.no_grad():
                _, secs = wall_once(lambda: fn(self.x(hint_batches[0])), self.device)
                for b in hint_batches[1:]:
                    fn(self.x(b))
            self.variants["dynamic"] = Variant("dynamic", fn, secs)
        return self.variants["dynamic"]

    def static(self, bucket: int) -> Variant:
        name = f"static-b{bucket}"
        if name not in self.variants:
            fn = torch.compile(self.model, dynamic=False, mode=self.mode)
            with torch.no_grad():
                _, secs = wall_once(lambda: fn(self.x(bucket)), self.device)
                fn(self.x(bucket))
            self.variants[name] = Variant(name, fn, secs)
        return self.variants[name]

    def run_static(self, batch: int, buckets: Sequence[int]) -> tuple[Callable[[], torch.Tensor], int]:
        b = bucket_for(batch, buckets)
        v = self.static(b)
        x = self.x(batch)

        def call() -> torch.Tensor:
            xp = x if b == batch else torch.cat([x, x.new_zeros(b - batch, *self.sample)])
            return v.fn(xp)[:batch]

        return call, b

    def latency_rows(self, batches: Sequence[int], buckets: Sequence[int], iters: int) -> list[ShapeRow]:
        """For each batch: the dynamic variant and the static bucket variant (padding included in its time)."""
        dyn = self.dynamic(list(batches))
        rows: list[ShapeRow] = []
        with torch.no_grad():
            for b in batches:
                x = self.x(b)
                ld = time_calls(lambda x=x: dyn.fn(x), self.device, warmup=3, iters=iters)
                rows.append(ShapeRow("dynamic", b, b, ld.p50_ms, ld.p95_ms, ld.throughput(b), 1.0))
                call, rb = self.run_static(b, buckets)
                ls = time_calls(call, self.device, warmup=3, iters=iters)
                rows.append(
                    ShapeRow(
                        f"static-b{rb}", b, rb, ls.p50_ms, ls.p95_ms, ls.throughput(b), round(ld.p50_ms / ls.p50_ms, 3)
                    )
                )
        return rows

    def stream(self, batches: Sequence[int], buckets: Sequence[int] | None, n: int, seed: int = 0) -> dict[str, float]:
        """A stream of `n` requests of random batch sizes drawn from `batches`: throughput and latency percentiles."""
        rng = random.Random(seed)
        sizes = [rng.choice(list(batches)) for _ in range(n)]
        calls: list[Callable[[], torch.Tensor]] = []
        for s in sizes:
            if buckets is None:
                x = self.x(s)
                v = self.dynamic(list(batches))
                calls.append(lambda x=x, v=v: v.fn(x))
            else:
                calls.append(self.run_static(s, buckets)[0])
        ms = []
        with torch.no_grad():
            for c in calls[:5]:
                c()
            for c in calls:
                lat = time_calls(c, self.device, warmup=0, iters=1)
                ms.append(lat.p50_ms)
        import numpy as np

        a = np.asarray(ms)
        return {
            "requests": n,
            "samples_per_s": sum(sizes) / (a.sum() / 1e3),
            "p50_ms": float(np.percentile(a, 50, method="inverted_cdf")),
            "p99_ms": float(np.percentile(a, 99, method="inverted_cdf")),
        }

    def peak_mib(self, variant: Variant, batch: int) -> float:
        """Peak device memory allocated during one forward at `batch` (0 on CPU)."""
        if self.device != "cuda":
            return 0.0
        x = self.x(batch)
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        base = torch.cuda.memory_allocated()
        with torch.no_grad():
            variant.fn(x)
        torch.cuda.synchronize()
        return (torch.cuda.max_memory_allocated() - base) / 2**20


def allow_many_variants(limit: int = 64) -> None:
    """Let Dynamo keep more compiled variants of one forward than its default 8 (one per bucket + dynamic)."""
    import torch._dynamo.config as dcfg

    for name in ("recompile_limit", "cache_size_limit"):
        if hasattr(dcfg, name):
            setattr(dcfg, name, limit)
