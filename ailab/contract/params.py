"""Typed runner parameters: every runner declares a `Params` model; the catalogue validates bindings against it.

A runner is `def run(ctx: Context, p: MyParams) -> Output`, `MyParams` a subclass of `Params`. The loader finds the
model from that annotation, validates the binding's `params` and `params + quick` when the catalogue loads, and
the runner receives a validated, frozen instance. Unknown keys are errors (`extra="forbid"`), so a typo in a
binding or on the command line fails at load with the field named instead of being silently ignored.
"""

from __future__ import annotations

import inspect
import typing
from collections.abc import Callable
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError


class Params(BaseModel):
    """Base of runner parameter models: frozen, no unknown fields, validated on assignment."""

    model_config = ConfigDict(extra="forbid", frozen=True, validate_default=True)


class NoParams(Params):
    """For runners that take no parameters."""


class ParamsError(ValueError):
    """Bad experiment parameters; the message names the field, the value given and what is allowed."""


def params_model(func: Callable[..., Any]) -> type[Params]:
    """The `Params` subclass a runner declares as its second argument (`NoParams` for one-argument runners)."""
    sig = inspect.signature(func)
    args = list(sig.parameters)
    if len(args) == 1:
        return NoParams
    if len(args) != 2:
        raise TypeError(f"runner {func.__qualname__} takes {len(args)} arguments; expected (ctx, params)")
    hints = typing.get_type_hints(func)
    model = hints.get(args[1])
    if not (isinstance(model, type) and issubclass(model, Params)):
        raise TypeError(f"runner {func.__qualname__}: argument {args[1]!r} is not annotated with a Params subclass")
    return model


def describe_error(
    err: ValidationError, given: dict[str, Any] | None = None, model: type[BaseModel] | None = None
) -> str:
    """One line per problem: `field <name> = <value>: <what is allowed>`."""
    lines = []
    for e in err.errors():
        loc = ".".join(str(x) for x in e["loc"]) or "(params)"
        if e["type"] == "extra_forbidden":
            allowed = _fields_at(model, e["loc"][:-1])
            lines.append(f"field {loc}: unknown parameter" + (f" (allowed: {', '.join(allowed)})" if allowed else ""))
            continue
        if e["type"] == "missing":
            lines.append(f"field {loc}: required, no value given")
            continue
        value = _value_at(given, e["loc"]) if given is not None else e.get("input")
        lines.append(f"field {loc} = {value!r}: {e['msg'].removeprefix('Value error, ')}")
    return "; ".join(lines)


def _value_at(given: Any, loc: tuple[Any, ...]) -> Any:
    """The value the user gave at `loc` (pydantic's own input for a nested error can be the parent mapping)."""
    for part in loc:
        try:
            given = given[part]
        except (KeyError, IndexError, TypeError):
            return given
    return given


def _fields_at(model: type[BaseModel] | None, loc: tuple[Any, ...]) -> list[str]:
    """Field names of the (nested) model at `loc`, following fields whose type is itself a model."""
    for part in loc:
        if model is None:
            return []
        if isinstance(part, int):
            continue  # an item of a list of models: same model
        field = model.model_fields.get(str(part))
        ann = field.annotation if field else None
        inner = [a for a in (typing.get_args(ann) or (ann,)) if isinstance(a, type) and issubclass(a, BaseModel)]
        model = inner[0] if inner else None
    return sorted(model.model_fields) if model else []


def validate(model: type[Params], values: dict[str, Any]) -> Params:
    """`model(**values)`, or ParamsError naming each bad field, its value and what is allowed."""
    try:
        return model.model_validate(values)
    except ValidationError as err:
        raise ParamsError(describe_error(err, values, model)) from None
