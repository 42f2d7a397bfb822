"""d57.e3: the tensor-parallel split of an MLP block, simulated in one process (no timing is asserted)."""

from __future__ import annotations

import pytest

from workloads.parallel.tp_sim import simulate


def test_partitions_sum_to_the_unsplit_block_and_split_the_work() -> None:
    one, two, four = simulate(tokens=16, hidden=32, partitions=[1, 2, 4], reps=1)
    for s in (one, two, four):
        assert s.rel_error < 1e-6  # fp32 partials summed vs the float64 unsplit block
    assert two.flops_per_partition == one.flops_per_partition / 2
    assert four.weight_bytes_per_partition == one.weight_bytes_per_partition / 4
    out_bytes = 16 * 32 * 4
    assert one.allreduce_bytes_per_gpu == 0  # nothing to sum on one device
    assert four.allreduce_bytes_per_gpu == pytest.approx(out_bytes * 2 * 3 / 4)  # ring all-reduce: 2(p-1)/p


def test_bad_parameters_name_the_field_and_what_is_allowed() -> None:
    with pytest.raises(ValueError, match=r"params\.partitions 3: allowed: integers >= 1 dividing 4 x hidden = 128"):
        simulate(tokens=4, hidden=32, partitions=[3])
    with pytest.raises(ValueError, match=r"params\.tokens 0: allowed: integer >= 1"):
        simulate(tokens=0, hidden=32, partitions=[1])
