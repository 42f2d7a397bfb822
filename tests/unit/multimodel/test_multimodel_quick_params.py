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
