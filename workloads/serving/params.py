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
        raise ValueError(f"params.{name} {v!r}: allowed {'integer' if kind is int else 'number'} {lo:g}..{hi:g}")
    return x
