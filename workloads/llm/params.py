"""Parameter access for the LLM runners: per-device values (`cuda_<name>` wins on CUDA) and up-front checks.

Errors name the field, the value and what is allowed, and are raised before any model is built.
"""

from __future__ import annotations

import statistics
from typing import Any

import torch

from ailab.contract import Context
from workloads.llm.model import DecoderLM, ModelConfig, bad, build

_MISSING = object()


def get(ctx: Context, name: str, default: Any = _MISSING) -> Any:
    """params[cuda_<name>] on CUDA when given, else params[<name>] (or default)."""
    if ctx.device == "cuda" and f"cuda_{name}" in ctx.params:
        return ctx.params[f"cuda_{name}"]
    if name in ctx.params:
        return ctx.params[name]
    if default is _MISSING:
        raise bad(f"params.{name}", None, "a value (missing from the binding)")
    return default


def integer(ctx: Context, name: str, lo: int = 1, default: Any = _MISSING) -> int:
    v = get(ctx, name, default)
    if isinstance(v, bool) or not isinstance(v, int) or v < lo:
        raise bad(f"params.{name}", v, f"integer >= {lo}")
    return v


def number(ctx: Context, name: str, lo: float, hi: float, default: Any = _MISSING) -> float:
    v = get(ctx, name, default)
    if isinstance(v, bool) or not isinstance(v, int | float) or not lo <= v <= hi:
        raise bad(f"params.{name}", v, f"number {lo:g}..{hi:g}")
    return float(v)


def integers(ctx: Context, name: str, lo: int = 1, allow_null: bool = False) -> list[Any]:
    """A non-empty list of integers >= lo (null entries allowed where they mean 'no window' / 'one shot')."""
    v = get(ctx, name)
    ok = (
        isinstance(v, list)
        and v
        and all((x is None and allow_null) or (isinstance(x, int) and not isinstance(x, bool) and x >= lo) for x in v)
    )
    if not ok:
        raise bad(f"params.{name}", v, f"a non-empty list of integers >= {lo}" + (" or null" if allow_null else ""))
    return list(v)


def model(ctx: Context, name: str = "model") -> tuple[DecoderLM, ModelConfig]:
    """The random-weight model of params.<name> (cuda_<name> on CUDA) on ctx.device."""
    cfg = ModelConfig.from_dict(get(ctx, name))
    if ctx.device == "cpu" and cfg.dtype == "float16":
        raise bad(f"params.{name}.dtype", cfg.dtype, "float32 or bfloat16 on CPU")
    if ctx.device == "cpu":  # two threads contending with other load on a 2-core host stall every op
        torch.set_num_threads(integer(ctx, "threads", 1, 1))
    return build(cfg, ctx.device), cfg


def threads_note(ctx: Context) -> str:
    """Caption fragment naming the torch CPU thread count (timings depend on it)."""
    return f" torch CPU threads: {torch.get_num_threads()}." if ctx.device == "cpu" else ""


def median(xs: list[float]) -> float:
    return statistics.median(xs) if xs else float("nan")


def mib(n_bytes: float) -> float:
    return n_bytes / 2**20
