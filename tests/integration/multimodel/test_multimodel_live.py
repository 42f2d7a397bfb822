"""Triton's rate limiter and dynamic-batcher priorities on a real tritonserver 2.51 (CPU, python backend): the limiter
serialises two models' executions when they share one global resource, and a priority-1 request overtakes queued
default-priority ones. Nothing is mocked; the models hold their instance for a fixed time per execution."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import numpy as np
import pytest

from ailab.contract import Context
from ailab.runner import local_platform
from workloads.multimodel.models import fixed_cost
from workloads.serving import harness
from workloads.serving.modelspec import DynamicBatching, RateLimiter, rate_limit_args

pytestmark = pytest.mark.integration
DELAY_MS = 300.0


SHARED = RateLimiter({"R": 1}, priority=1, global_resources=("R",))
PRIORITIES = DynamicBatching(preferred_batch_sizes=(1,), priority_levels=2, default_priority_level=2)
SPECS = [
    fixed_cost("a", DELAY_MS, count=1, rate_limiter=SHARED),
    fixed_cost("b", DELAY_MS, count=1, rate_limiter=SHARED),
    fixed_cost("prio", DELAY_MS, count=1, max_batch_size=1, dynamic_batching=PRIORITIES),
]


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[harness.Served]:
    ctx = Context("multimodel-tests", "cpu", True, tmp_path_factory.mktemp("mm"), platform=local_platform)
    with harness.serve(ctx, SPECS, args=rate_limit_args(SPECS, {"R": 1}), warm_requests=2) as srv:
        yield srv


def x(i: int) -> np.ndarray:
    return np.full((1, 1, 28, 28), float(i), dtype=np.float32)


def call(served: harness.Served, model: str, i: int, done: dict, priority: int = 0) -> None:
    import tritonclient.grpc as grpcclient

    c = grpcclient.InferenceServerClient(served.address("grpc"))
    try:
        inp = grpcclient.InferInput("input", [1, 1, 28, 28], "FP32")
        inp.set_data_from_numpy(x(i))
        res = c.infer(model, [inp], priority=priority, client_timeout=30)
        done[i] = (time.perf_counter(), res.as_numpy("logits"))
    finally:
        c.close()


def test_one_global_resource_serialises_two_models_executions(served: harness.Served):
    done: dict[int, tuple[float, np.ndarray]] = {}
    threads = [threading.Thread(target=call, args=(served, m, i, done)) for i, m in enumerate(["a", "b", "a", "b"])]
    t0 = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - t0
    assert sorted(done) == [0, 1, 2, 3]
    for i, (_, logits) in done.items():  # each caller got its own answer: the first ten pixels of its image
        np.testing.assert_array_equal(logits, np.full((1, 10), float(i), dtype=np.float32))
    # R:1 lets one execution run at a time: 4 x 300 ms. Without the limiter a and b run side by side (600 ms).
    assert wall >= 4 * DELAY_MS / 1e3 * 0.9, f"4 executions took {wall:.2f} s: the limiter did not serialise them"


def queue_behind_one(served: harness.Served, done: dict) -> list[threading.Thread]:
    """Request 0 executing on "prio" (300 ms) and default-priority requests 1, 2, 3 queued behind it, in order."""
    first = threading.Thread(target=call, args=(served, "prio", 0, done))
    first.start()
    time.sleep(0.08)  # request 0 is executing; the next ones queue behind it
    low = [threading.Thread(target=call, args=(served, "prio", i, done)) for i in (1, 2, 3)]
    for t in low:
        t.start()
        time.sleep(0.02)
    return [first, *low]


def test_priority_one_request_overtakes_queued_default_priority_requests(served: harness.Served):
    done: dict[int, tuple[float, np.ndarray]] = {}
    queued = queue_behind_one(served, done)
    high = threading.Thread(target=call, args=(served, "prio", 9, done, 1))
    high.start()
    for t in (*queued, high):
        t.join()
    order = [i for i, _ in sorted(done.items(), key=lambda kv: kv[1][0])]
    assert order[0] == 0 and order[1] == 9, f"completion order {order}: priority 1 should run right after request 0"
    np.testing.assert_array_equal(done[9][1], np.full((1, 10), 9.0, dtype=np.float32))


@pytest.mark.parametrize("protocol", ["http", "grpc"])
def test_the_load_generators_priority_overtakes_queued_default_priority_requests(served: harness.Served, protocol):
    """d60.e2's probe: a request the lab's generator sends at priority 1 overtakes queued default-priority requests
    (it is answered before the last two of them); the same request without a priority is answered after all."""
    from workloads.serving import loadgen

    def probe(priority: int) -> tuple[float, list[float]]:
        done: dict[int, tuple[float, np.ndarray]] = {}
        queued = queue_behind_one(served, done)
        spec = loadgen.LoadSpec(served.address(protocol), "prio", protocol, concurrency=1, warmup_s=0.0, requests=1,
                                priority=priority)  # fmt: skip
        res = loadgen.run(spec)
        answered = time.perf_counter()  # the probe's response came just before
        for t in queued:
            t.join()
        assert (res.ok, res.errors) == (1, {}), res.error_examples
        return answered, [done[i][0] for i in (1, 2, 3)]

    high, queued = probe(1)
    assert high < queued[1], f"priority 1 answered {queued[1] - high:.2f} s after the second queued request"
    default, queued = probe(0)
    assert default > queued[2], f"without a priority answered {queued[2] - default:.2f} s before the last queued one"
