"""d60.e2's flood warm-up, shortened by quick runs, keeps the full runs' 2 s by default and is checked by name."""

from __future__ import annotations

import pytest

from ailab.contract.params import ParamsError, validate
from workloads.multimodel.experiments.priorities import PriorityParams


def test_flood_warmup_defaults_to_the_measured_two_seconds() -> None:
    assert PriorityParams().flood_warmup_s == 2.0


@pytest.mark.parametrize("bad", [0.0, 31.0, "long"])
def test_a_bad_flood_warmup_names_the_field(bad) -> None:
    with pytest.raises(ParamsError, match="flood_warmup_s"):
        validate(PriorityParams, {"flood_warmup_s": bad})


def test_warmups_and_settle_default_to_what_the_full_runs_were_measured_with() -> None:
    from workloads.multimodel.experiments.curves import CurvesParams
    from workloads.multimodel.experiments.jitter import JitterParams
    from workloads.multimodel.experiments.rate_limit import FairnessParams, GlobalCapParams

    assert (CurvesParams().warmup_s, CurvesParams().settle) == (1.0, "two_scrapes")
    assert JitterParams().warmup_s == 1.0
    assert FairnessParams().warmup_s == GlobalCapParams().warmup_s == 1.5


@pytest.mark.parametrize(
    ("field", "bad"), [("warmup_s", 0.0), ("warmup_s", 61.0), ("warmup_s", "short"), ("settle", "one_scrape")]
)
def test_a_bad_curves_warmup_or_settle_names_the_field(field, bad) -> None:
    from workloads.multimodel.experiments.curves import CurvesParams

    with pytest.raises(ParamsError, match=field):
        validate(CurvesParams, {field: bad})


@pytest.mark.parametrize("model", ["jitter:JitterParams", "rate_limit:FairnessParams", "rate_limit:GlobalCapParams"])
def test_a_zero_warmup_is_refused_naming_the_field(model) -> None:
    import importlib

    module, name = model.split(":")
    params = getattr(importlib.import_module(f"workloads.multimodel.experiments.{module}"), name)
    with pytest.raises(ParamsError, match="warmup_s"):
        validate(params, {"warmup_s": 0.0})
