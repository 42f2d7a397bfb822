"""d57 pipeline parallelism: the schedule's arithmetic, the split checks and the runner's parameters (no processes).
The two-process gloo run itself is in tests/integration/parallel/test_pipeline_gloo.py."""

from __future__ import annotations

import pytest

from ailab.contract.params import ParamsError, validate
from workloads.parallel.experiments.pipeline import PipelineParams
from workloads.parallel.pipeline import bubble, check_split, shape


def test_ideal_bubble_shrinks_as_micro_batches_fill_the_pipeline() -> None:
    assert bubble(2, 1) == pytest.approx(1 / 2)
    assert bubble(2, 4) == pytest.approx(1 / 5)
    assert bubble(4, 4) == pytest.approx(3 / 7)
    assert [bubble(2, m) for m in (1, 2, 4, 8)] == sorted([bubble(2, m) for m in (1, 2, 4, 8)], reverse=True)


def test_the_split_needs_whole_layers_and_equal_micro_batches() -> None:
    s = shape(quick=False, cpu=True)
    assert s.layers == 4  # d57.e1: a 4-layer transformer, two layers per device
    check_split(s, 2, [1, 2, 4, 8])
    with pytest.raises(ValueError, match=r"--ranks 3: must divide the 4 layers"):
        check_split(s, 3, [1])
    with pytest.raises(ValueError, match=r"--micro \[3\]: each must divide the batch of 8"):
        check_split(s, 2, [1, 3])


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({}, "field view: required, no value given"),
        ({"view": "latency"}, "field view = 'latency': Input should be 'split', 'micro_batches', 'memory' or"),
        ({"view": "split", "micro": [3]}, "field micro = [3]: micro [3]: allowed 1, 2, 4, 8"),
        ({"view": "split", "ranks": 3}, "field ranks = 3: ranks 3: allowed 2 or 4"),
    ],
)
def test_bad_parameters_name_the_field_and_what_is_allowed(values: dict, message: str) -> None:
    with pytest.raises(ParamsError) as err:
        validate(PipelineParams, values)
    assert message in str(err.value)
