"""The warm-up knob the quick runs shorten is checked like every parameter: a bad value names the field."""

from __future__ import annotations

import pytest

from ailab.contract.params import ParamsError, validate
from workloads.backends.experiments.hot_loop import HotLoopParams
from workloads.backends.experiments.instances import InstancesParams
from workloads.backends.experiments.tokenizer_model import BatchParams, TokenizerParams


@pytest.mark.parametrize("model", [TokenizerParams, BatchParams, InstancesParams, HotLoopParams])
def test_warmup_defaults_to_the_full_runs_second_and_refuses_bad_values(model) -> None:
    assert model().warmup_s == 1.0  # what the committed full results were measured with
    for bad in (-0.5, 61.0, True):
        with pytest.raises(ParamsError, match="warmup_s"):
            validate(model, {"warmup_s": bad})
