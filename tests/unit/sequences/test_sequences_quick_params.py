"""The perf_analyzer stability knob the quick runs use is off by default (full runs keep the lab's 50 %) and is
checked like every parameter."""

from __future__ import annotations

import pytest

from ailab.contract.params import ParamsError, validate
from workloads.sequences.experiments.conversations import ConversationParams


def test_stability_is_the_labs_default_unless_given() -> None:
    assert ConversationParams().pa_stability_percentage is None
    assert ConversationParams(pa_stability_percentage=1000).pa_stability_percentage == 1000


@pytest.mark.parametrize("bad", [0, 1001, "lots"])
def test_a_bad_stability_names_the_field(bad) -> None:
    with pytest.raises(ParamsError, match="pa_stability_percentage"):
        validate(ConversationParams, {"pa_stability_percentage": bad})
