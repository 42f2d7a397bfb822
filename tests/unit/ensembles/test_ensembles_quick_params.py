"""Knobs the quick runs turn (the load generator's warm-up, how the Prometheus view waits for its data) keep the
values the committed full runs were measured with by default, and a bad value is refused naming the field."""

from __future__ import annotations

import pytest

from ailab.contract.params import ParamsError, validate
from workloads.ensembles.experiments.overhead import OverheadParams
from workloads.ensembles.experiments.step_times import PreprocessParams, StepMetricsParams


def test_defaults_are_the_full_runs_values() -> None:
    assert OverheadParams().warmup_s == PreprocessParams().warmup_s == 1.0
    assert StepMetricsParams().settle == "two_scrapes"


@pytest.mark.parametrize("model", [OverheadParams, PreprocessParams])
@pytest.mark.parametrize("bad", [-0.5, 61.0, "1s"])
def test_a_bad_warmup_names_the_field(model, bad) -> None:
    with pytest.raises(ParamsError, match="warmup_s"):
        validate(model, {"warmup_s": bad})


def test_an_unknown_settle_names_the_field_and_the_allowed_values() -> None:
    with pytest.raises(ParamsError, match="settle") as exc:
        validate(StepMetricsParams, {"settle": "sleep"})
    assert "next_scrape" in str(exc.value)
