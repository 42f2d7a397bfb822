"""d57.e3: tensor parallelism of one MLP block (Y = gelu(X W1) W2) simulated in one process: the weights are cut
into p partitions the way Megatron-LM cuts them across GPUs (W1 by columns, W2 by rows), each partition computes
its part, and the partial outputs are summed (the all-reduce a real run performs over NCCL, see tp.py).
Reports per partition: FLOPs, weight bytes, time; and the bytes an all-reduce of the output moves per GPU."""

from __future__ import annotations

import statistics
import time
from dataclasses import dataclass

import torch
from torch.nn import functional as F  # noqa: N812 - the conventional name

from workloads.parallel.busbw import bus_factor


@dataclass(frozen=True)
class Split:
    partitions: int
    flops_per_partition: float  # multiply-adds x 2
    weight_bytes_per_partition: int
    allreduce_bytes_per_gpu: float  # what a ring all-reduce of the output sends per GPU: size x 2(p-1)/p
    time_per_partition_ms: float  # median, partitions run one after another on this CPU
    rel_error: float  # summed partitions vs the unsplit block


def _median_ms(fn, reps: int) -> float:
    fn()
    ts = []
    for _ in range(reps):
        t = time.perf_counter()
        fn()
        ts.append((time.perf_counter() - t) * 1e3)
    return statistics.median(ts)


def simulate(tokens: int, hidden: int, partitions: list[int], reps: int = 5, seed: int = 57) -> list[Split]:
    """Split the block into each partition count and check that the summed partial outputs equal the full block."""
    for field, v in (("tokens", tokens), ("hidden", hidden), ("reps", reps)):
        if not isinstance(v, int) or isinstance(v, bool) or v < 1:
            raise ValueError(f"params.{field} {v!r}: allowed: integer >= 1")
    ffn = 4 * hidden
    for p in partitions:
        if not isinstance(p, int) or isinstance(p, bool) or p < 1 or ffn % p:
            raise ValueError(f"params.partitions {p!r}: allowed: integers >= 1 dividing 4 x hidden = {ffn}")
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(tokens, hidden, generator=g, dtype=torch.float64)
    w1 = torch.randn(hidden, ffn, generator=g, dtype=torch.float64) / hidden**0.5
    w2 = torch.randn(ffn, hidden, generator=g, dtype=torch.float64) / ffn**0.5
    full = F.gelu(x @ w1) @ w2
    xs, w1s, w2s = x.float(), w1.float(), w2.float()
    out = []
    for p in partitions:
        cols = [w1s[:, i * ffn // p : (i + 1) * ffn // p].contiguous() for i in range(p)]
        rows = [w2s[i * ffn // p : (i + 1) * ffn // p, :].contiguous() for i in range(p)]
        partial = [F.gelu(xs @ c) @ r for c, r in zip(cols, rows, strict=True)]  # no communication inside a block
        total = torch.stack(partial).sum(0)  # the all-reduce
        err = float((total.double() - full).norm() / full.norm())
        t = _median_ms(lambda c=cols[0], r=rows[0]: F.gelu(xs @ c) @ r, reps)
        out_bytes = tokens * hidden * 4
        out.append(
            Split(
                partitions=p,
                flops_per_partition=2.0 * tokens * hidden * (ffn // p) * 2,
                weight_bytes_per_partition=(cols[0].numel() + rows[0].numel()) * 4,
                allreduce_bytes_per_gpu=out_bytes * bus_factor("all_reduce", p),
                time_per_partition_ms=t,
                rel_error=err,
            )
        )
    return out
