"""Checks of experiment parameters, before anything starts: errors name the field, the value and what is allowed."""

from __future__ import annotations

from typing import Any


def number(params: dict[str, Any], name: str, default: float, lo: float, hi: float, kind: type = int) -> Any:
    """params[name] (or default) as `kind` within lo..hi; ValueError "params.<name> <value>: allowed ..." otherwise."""
    v = params.get(name, default)
    try:
        x = kind(v)
    except (TypeError, ValueError):
        x = None
    if x is None or isinstance(v, bool) or (kind is int and x != v) or not lo <= x <= hi:
        what = "integer" if kind is int else "number"
        raise ValueError(f"params.{name} {v!r}: allowed {what} {_fmt(lo)}..{_fmt(hi)}")
    return x


def _fmt(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else f"{x:g}"
