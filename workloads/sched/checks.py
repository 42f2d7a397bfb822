"""Parameter checks of the scheduling runners, before any worker starts: errors name field, value, what is allowed."""

from __future__ import annotations

from typing import Any

from workloads.serving.params import number

__all__ = ["choices", "number", "numbers"]


def numbers(params: dict[str, Any], name: str, default: list[Any], lo: float, hi: float, kind: type = int) -> list[Any]:
    """params[name] (or default) as a non-empty list of `kind` within lo..hi; ValueError naming the field otherwise."""
    v = params.get(name, default)
    what = "integers" if kind is int else "numbers"
    if not isinstance(v, list | tuple) or not v:
        raise ValueError(f"params.{name} {v!r}: allowed a non-empty list of {what} {lo:g}..{hi:g}")
    out = []
    for x in v:
        try:
            out.append(number({name: x}, name, x, lo, hi, kind))
        except ValueError:
            raise ValueError(f"params.{name} {v!r}: allowed a non-empty list of {what} {lo:g}..{hi:g}") from None
    return out


def choices(params: dict[str, Any], name: str, default: list[str], allowed: tuple[str, ...]) -> list[str]:
    """params[name] (or default) as a non-empty list drawn from `allowed`; ValueError naming the field otherwise."""
    v = params.get(name, default)
    if not isinstance(v, list | tuple) or not v or any(x not in allowed for x in v):
        raise ValueError(f"params.{name} {v!r}: allowed a non-empty list of {', '.join(allowed)}")
    return list(v)
