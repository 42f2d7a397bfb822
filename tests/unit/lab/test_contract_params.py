"""Typed runner parameters: every error names the field, the value given and what is allowed."""

from __future__ import annotations

import pytest
from pydantic import BaseModel, ConfigDict, Field

from ailab.contract import Context, NoParams, Output, Params
from ailab.contract.params import ParamsError, params_model, validate


class Inner(BaseModel):
    model_config = ConfigDict(extra="forbid")
    vocab: int = 1
    d_model: int = 2


class Sample(Params):
    model: Inner = Inner()
    threads: int = Field(default=1, ge=1, le=64)
    sizes: list[int] = Field(default=[1])


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"model": {"heads": 3}}, "field model.heads: unknown parameter (allowed: d_model, vocab)"),
        ({"thread": 2}, "field thread: unknown parameter (allowed: model, sizes, threads)"),
        ({"model": {"vocab": "x"}}, "field model.vocab = 'x': Input should be a valid integer"),
        ({"sizes": [1, "a"]}, "field sizes.1 = 'a': Input should be a valid integer"),
        ({"threads": 0}, "field threads = 0: Input should be greater than or equal to 1"),
    ],
)
def test_errors_name_field_value_and_what_is_allowed(values: dict, message: str) -> None:
    with pytest.raises(ParamsError) as err:
        validate(Sample, values)
    assert message in str(err.value)


def test_params_are_frozen_and_defaults_fill_the_rest() -> None:
    p = validate(Sample, {"threads": 4})
    assert (p.threads, p.sizes, p.model.vocab) == (4, [1], 1)
    with pytest.raises(ValueError):
        p.threads = 8  # type: ignore[misc]


def test_the_model_comes_from_the_runner_signature() -> None:
    def typed(ctx: Context, p: Sample) -> Output: ...

    def bare(ctx: Context) -> Output: ...

    def untyped(ctx: Context, p: dict) -> Output: ...

    assert params_model(typed) is Sample and params_model(bare) is NoParams
    with pytest.raises(TypeError, match="argument 'p' is not annotated with a Params subclass"):
        params_model(untyped)
