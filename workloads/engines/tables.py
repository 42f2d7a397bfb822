"""Dataclass rows → contract tables, units by column-name suffix; and the substitute record for TensorRT."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ailab.contract import Substitute, Table

RATES = {
    "GB": "GB/s",
    "calls": "calls/s",
    "requests": "req/s",
    "sequences": "seq/s",
    "tokens": "tokens/s",
    "samples": "samples/s",
}
SUFFIXES = {"_ms": "ms", "_s": "s", "_pct": "%", "_mib": "MiB", "_kib": "KiB"}


def unit(col: str) -> str:
    """A column's unit from its name: ratios (`vs_`, `speedup`) are x, `<what>_per_s` a rate, then by suffix."""
    if "vs_" in col or col.startswith("speedup"):
        return "x"
    if col.endswith("_per_s"):
        return RATES.get(col[: -len("_per_s")], "1/s")
    if col == "throughput":
        return "samples/s"
    return next((u for suffix, u in SUFFIXES.items() if col.endswith(suffix)), "")


def _round(v: Any) -> Any:
    return round(v, 4) if isinstance(v, float) else v


def table(name: str, rows: Sequence[dict[str, Any]], caption: str = "", columns: Sequence[str] | None = None) -> Table:
    cols = list(columns or (rows[0].keys() if rows else []))
    t = Table.of(name, [(c, unit(c)) for c in cols], caption=caption)
    for r in rows:
        t.add(*[_round(r.get(c)) for c in cols])
    return t


def tensorrt_substitute(used: str) -> Substitute:
    return Substitute(
        instead_of="TensorRT",
        used=used,
        why="TensorRT cannot be installed on the lent H200 or on this host (its wheels download from NVIDIA's index, "
        "which neither reaches); the TensorRT path is in workloads/engines/trt.py for hosts that have it",
    )
