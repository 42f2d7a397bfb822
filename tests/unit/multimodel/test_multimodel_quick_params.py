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


@pytest.mark.parametrize(
    "model",
    ["curves:CurvesParams", "jitter:JitterParams", "rate_limit:FairnessParams", "rate_limit:GlobalCapParams",
     "priorities:PriorityParams"],
)  # fmt: skip
def test_auto_completion_stays_on_by_default_and_a_non_boolean_is_refused(model) -> None:
    import importlib

    module, name = model.split(":")
    params = getattr(importlib.import_module(f"workloads.multimodel.experiments.{module}"), name)
    assert params().auto_complete_config is True
    with pytest.raises(ParamsError, match="auto_complete_config"):
        validate(params, {"auto_complete_config": "no"})


def test_server_args_add_the_flag_only_when_auto_completion_is_off() -> None:
    from workloads.multimodel.experiments import AUTO_COMPLETE_OFF, server_args

    assert server_args(True, ["--rate-limit=execution_count"]) == ["--rate-limit=execution_count"]
    assert server_args(False, ["--rate-limit=execution_count"]) == ["--rate-limit=execution_count", AUTO_COMPLETE_OFF]


def test_stall_warmup_and_probe_delay_default_to_the_full_runs_one_second() -> None:
    p = PriorityParams()
    assert (p.stall_warmup_s, p.probe_delay_s) == (1.0, 1.0)
    for field in ("stall_warmup_s", "probe_delay_s"):
        with pytest.raises(ParamsError, match=field):
            validate(PriorityParams, {field: 0.0})
