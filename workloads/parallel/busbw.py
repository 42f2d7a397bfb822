"""Bandwidth definitions exactly as nccl-tests (doc/PERFORMANCE.md) gives them, for any number of ranks."""

from __future__ import annotations

OPS = ("all_reduce", "all_gather", "reduce_scatter")


def bus_factor(op: str, nranks: int) -> float:
    """busbw / algbw: all-reduce 2(n-1)/n; all-gather and reduce-scatter (n-1)/n."""
    if op not in OPS:
        raise ValueError(f"op {op!r}: allowed values are {', '.join(OPS)}")
    if nranks < 1:
        raise ValueError(f"nranks {nranks}: must be >= 1")
    return (2.0 if op == "all_reduce" else 1.0) * (nranks - 1) / nranks


def algbw_gbs(size_bytes: int, seconds: float) -> float:
    """algbw = S / t in GB/s, S the op's size as nccl-tests counts it (all-gather: the whole output)."""
    return size_bytes / seconds / 1e9


def busbw_gbs(op: str, nranks: int, size_bytes: int, seconds: float) -> float:
    return algbw_gbs(size_bytes, seconds) * bus_factor(op, nranks)
