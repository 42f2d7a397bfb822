"""d83 batching logic with a fake clock: Triton's dynamic-batching rule, the bounded queue, config validation."""

from __future__ import annotations

import numpy as np
import pytest

from workloads.sched.batching import BatchConfig, Request, RequestQueue, decide


def _req(i: int, t: float) -> Request:
    return Request(i, np.zeros((1, 1, 28, 28), np.float32), t)


def test_full_batch_goes_at_once():
    cfg = BatchConfig(max_batch_size=8, max_queue_delay_us=10_000)
    assert decide(cfg, pending=20, oldest_enqueued=0.0, now=0.0) == (8, None)


def test_largest_preferred_size_that_can_be_formed_goes_without_waiting():
    cfg = BatchConfig(max_batch_size=32, max_queue_delay_us=10_000, preferred_sizes=(4, 8, 16))
    assert decide(cfg, pending=11, oldest_enqueued=0.0, now=0.0) == (8, None)
    assert decide(cfg, pending=3, oldest_enqueued=0.0, now=0.0) == (0, pytest.approx(0.010))


def test_a_partial_batch_waits_until_the_oldest_request_reaches_the_delay_then_goes():
    cfg = BatchConfig(max_batch_size=32, max_queue_delay_us=2000)
    assert decide(cfg, pending=5, oldest_enqueued=1.0, now=1.0005) == (0, pytest.approx(1.002))
    assert decide(cfg, pending=5, oldest_enqueued=1.0, now=1.002) == (5, None)


def test_zero_delay_sends_whatever_is_there():
    cfg = BatchConfig(max_batch_size=32, max_queue_delay_us=0)
    assert decide(cfg, pending=3, oldest_enqueued=5.0, now=5.0) == (3, None)


def test_no_batching_is_max_batch_size_one():
    cfg = BatchConfig(max_batch_size=1, max_queue_delay_us=0)
    assert decide(cfg, pending=100, oldest_enqueued=0.0, now=0.0) == (1, None)


def test_an_empty_queue_waits_for_an_arrival():
    assert decide(BatchConfig(), pending=0, oldest_enqueued=0.0, now=0.0) == (0, None)


def _simulate(cfg: BatchConfig, arrivals: list[float], service_s: float) -> list[tuple[float, float, list[float]]]:
    """One worker on a fake clock, driven by `decide` as Frontend.serve is: [(formation start, dispatch, enqueues)]."""
    q = RequestQueue(10_000)
    batches: list[tuple[float, float, list[float]]] = []
    pending = [_req(i, t) for i, t in enumerate(arrivals)]
    now, free_at, t_form = 0.0, 0.0, None
    while pending or q:
        now = max(now, free_at)
        while pending and pending[0].t_enq <= now:
            q.offer(pending.pop(0))
        if not q:
            now = pending[0].t_enq
            continue
        t_form = now if t_form is None else t_form  # worker free and a request waiting: formation begins
        n, until = decide(cfg, len(q), q.oldest(), now)
        if n == 0:
            # the batcher sleeps until the deadline or the next arrival, whichever is first
            now = min([until] + ([pending[0].t_enq] if pending else []))
            continue
        batch = q.take(n)
        batches.append((t_form, now, [r.t_enq for r in batch]))
        free_at, t_form = now + service_s, None
    return batches


def test_simulated_batches_never_exceed_max_size_nor_hold_a_request_past_the_delay():
    rng = np.random.default_rng(0)
    arrivals = list(np.cumsum(rng.exponential(1 / 5000, size=2000)))  # 5000 req/s on a fake clock
    cfg = BatchConfig(max_batch_size=16, max_queue_delay_us=1000, preferred_sizes=(8,))
    batches = _simulate(cfg, arrivals, service_s=0.0005)
    assert sum(len(b) for _, _, b in batches) == 2000
    assert max(len(b) for _, _, b in batches) <= 16
    for t_form, t_sent, enq in batches:
        # once a worker is free, a batch leaves by its oldest request's deadline (or at once if that has passed)
        assert t_sent <= max(t_form, min(enq) + 0.001) + 1e-12
    assert len(batches) < 2000  # under this load requests do share batches


def test_simulated_light_load_waits_the_full_delay_for_batch_mates():
    cfg = BatchConfig(max_batch_size=8, max_queue_delay_us=1000)
    batches = _simulate(cfg, [0.0, 0.0002, 0.0030], service_s=0.0001)
    want = [(pytest.approx(0.001), [0.0, 0.0002]), (pytest.approx(0.004), [0.003])]
    assert [(t, enq) for _, t, enq in batches] == want


def test_bounded_queue_rejects_and_counts_when_full_and_keeps_fifo_order():
    q = RequestQueue(2)
    assert q.offer(_req(0, 0.0)) and q.offer(_req(1, 0.1))
    assert not q.offer(_req(2, 0.2))
    assert q.rejected == 1 and len(q) == 2 and q.peak == 2
    assert [r.id for r in q.take(5)] == [0, 1]
    assert q.offer(_req(3, 0.3))  # room again after the batcher took requests


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"max_batch_size": 0}, "max_batch_size 0: allowed integer >= 1"),
        ({"max_batch_size": 2.5}, "max_batch_size 2.5: allowed integer >= 1"),
        ({"max_queue_delay_us": -1}, "max_queue_delay_us -1: allowed integer >= 0"),
        ({"max_batch_size": 8, "preferred_sizes": (4, 16)}, "preferred_sizes [4, 16]: allowed integers 1..max_batch"),
        ({"queue_capacity": 0}, "queue_capacity 0: allowed integer >= 1"),
    ],
)
def test_batch_config_rejects_bad_settings_naming_field_value_and_allowed(kwargs, message):
    with pytest.raises(ValueError) as e:
        BatchConfig(**kwargs)
    assert message in str(e.value)
