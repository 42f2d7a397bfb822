"""d72 scheduling logic without processes: who each scheduler picks, ties, split sizes and in-order merging."""

from __future__ import annotations

import numpy as np
import pytest

from workloads.sched import dispatch


def test_round_robin_cycles_through_workers_regardless_of_load():
    s = dispatch.make("round_robin", 3)
    s.outstanding = [5, 0, 0]  # load is ignored
    assert [s.pick() for _ in range(7)] == [0, 1, 2, 0, 1, 2, 0]


def test_least_load_picks_the_worker_with_fewest_outstanding_tasks():
    s = dispatch.make("least_load", 3)
    s.outstanding = [3, 1, 2]
    assert s.pick() == 1


def test_least_load_ties_rotate_instead_of_always_taking_worker_zero():
    s = dispatch.make("least_load", 3)
    picks = []
    for _ in range(6):
        i = s.pick()
        picks.append(i)
        s.dispatched(i)
    # each pick adds one outstanding task: the idle pool is shared in turn, 0, 1, 2, then again
    assert picks == [0, 1, 2, 0, 1, 2]
    s.completed(1, 0.001)
    assert s.pick() == 1  # the only worker with one fewer task
    assert s.outstanding == [2, 1, 2]


def test_least_load_shares_an_idle_pool_in_turn_when_every_task_finishes_before_the_next():
    s = dispatch.make("least_load", 3)
    picks = []
    for _ in range(5):
        i = s.pick()
        s.dispatched(i)
        s.completed(i, 0.001)  # always all idle: a pure tie, broken by the rotating cursor
        picks.append(i)
    assert picks == [0, 1, 2, 0, 1]


def test_least_time_weighs_queue_length_by_observed_service_time():
    s = dispatch.LeastTime(2, alpha=0.5)
    for i, svc in ((0, 0.001), (1, 0.004)):  # worker 1 is four times slower
        s.dispatched(i)
        s.completed(i, svc)
    assert s.ewma == [0.001, 0.004]
    s.outstanding = [2, 0]  # (2+1) x 1 ms = 3 ms  <  (0+1) x 4 ms
    assert s.pick() == 0
    s.outstanding = [4, 0]  # 5 ms  >  4 ms
    assert s.pick() == 1
    s.dispatched(1)
    s.completed(1, 0.002)
    assert s.ewma[1] == pytest.approx(0.003)  # 0.5 x 4 ms + 0.5 x 2 ms


def test_least_time_tries_every_worker_before_speeds_are_known():
    s = dispatch.LeastTime(3)
    picks = [s.pick() for _ in range(3)]
    assert sorted(picks) == [0, 1, 2]


def test_power_of_two_takes_the_less_loaded_of_its_two_samples():
    s = dispatch.make("p2c", 2, seed=1)
    s.outstanding = [0, 9]
    assert {s.pick() for _ in range(20)} == {0}  # with two workers both are always sampled
    s3 = dispatch.make("p2c", 3, seed=1)
    s3.outstanding = [0, 0, 100]
    picks = [s3.pick() for _ in range(200)]
    assert 2 not in picks  # worker 2 loses every comparison it is sampled into


def test_unknown_scheduler_names_the_allowed_ones():
    with pytest.raises(ValueError, match=r"scheduler 'random': allowed round_robin, least_load, least_time, p2c"):
        dispatch.make("random", 2)


def test_split_equal_covers_every_row_once_in_order_with_sizes_within_one():
    slices = dispatch.split(10, 3)
    assert [(s.start, s.stop) for s in slices] == [(0, 4), (4, 7), (7, 10)]


def test_split_weighted_follows_the_weights_and_keeps_a_row_per_part():
    slices = dispatch.split(100, 3, [4, 4, 1])
    assert [s.stop - s.start for s in slices] == [44, 45, 11] or [s.stop - s.start for s in slices] == [45, 44, 11]
    assert slices[0].start == 0 and slices[-1].stop == 100
    tiny = dispatch.split(3, 3, [100, 100, 1])
    assert [s.stop - s.start for s in tiny] == [1, 1, 1]


@pytest.mark.parametrize(
    ("rows", "parts", "weights", "message"),
    [
        (4, 5, None, "parts 5: allowed integer 1..4"),
        (4, 0, None, "parts 0: allowed integer 1..4"),
        (4, 2, [1.0], "weights [1.0]: allowed 2 positive numbers"),
        (4, 2, [1.0, 0.0], "weights [1.0, 0.0]: allowed 2 positive numbers"),
    ],
)
def test_split_rejects_impossible_requests(rows, parts, weights, message):
    with pytest.raises(ValueError, match=message.replace("[", r"\[").replace("]", r"\]")):
        dispatch.split(rows, parts, weights)


def test_merge_restores_sub_task_order_whatever_the_arrival_order():
    x = np.arange(20, dtype=np.float32).reshape(10, 2)
    slices = dispatch.split(10, 3)
    arrived = {2: x[slices[2]], 0: x[slices[0]], 1: x[slices[1]]}
    assert np.array_equal(dispatch.merge(arrived, 3), x)


def test_merge_refuses_when_a_sub_result_is_missing():
    with pytest.raises(ValueError, match=r"sub-tasks \[1\] have no result"):
        dispatch.merge({0: np.zeros((1, 2)), 2: np.zeros((1, 2))}, 3)
