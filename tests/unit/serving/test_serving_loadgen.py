"""Load generator arithmetic and error classification, without a server."""

from __future__ import annotations

import math

import numpy as np
from tritonclient.utils import InferenceServerException

from workloads.serving.client import InferenceError, classify
from workloads.serving.loadgen import LoadResult, percentile, shortfall_tolerance, summarize, verdict
from workloads.serving.metrics import ModelCounters, parse


def test_percentiles_are_nearest_rank_over_all_samples():
    a = np.arange(1, 1001, dtype=float)  # 1..1000 ms
    assert percentile(a, 50) == 500.0
    assert percentile(a, 99) == 990.0
    assert percentile(a, 99.9) == 999.0
    assert percentile(np.array([7.0]), 99.9) == 7.0
    assert math.isnan(percentile(np.array([]), 50))
    s = summarize([3.0, 1.0, 2.0, 4.0])
    assert (s["p50"], s["p99"], s["max"], s["mean"]) == (2.0, 4.0, 4.0, 2.5)


def test_verdict_blames_the_generator_only_when_the_server_idles():
    r = LoadResult(spec={}, window_s=10, sent=5000, ok=5000, achieved_qps=500, throughput_rps=500, target_qps=1000)
    r.send_lag_ms = {"p50": 40.0}
    r.server = {"busy": 0.2, "queue_us": 50.0}
    assert verdict(r).startswith("generator-bound")
    r.achieved_qps = 1000  # everything was sent, but only half was served while the server queued
    r.server = {"busy": 1.0, "queue_us": 30_000.0}
    assert verdict(r).startswith("server-bound")
    r.throughput_rps = 990
    assert verdict(r) == "target met"
    r.ok = 0
    assert verdict(r).startswith("all 5000 requests failed")


def test_poisson_noise_is_not_called_a_shortfall():
    assert shortfall_tolerance(100, 4) == 0.15  # 400 arrivals: 3 sigma is 15 %
    assert shortfall_tolerance(2000, 10) == 0.05


def test_only_connection_failures_before_sending_are_retryable():
    assert classify(ConnectionRefusedError()) == ("connection", True)
    unavailable = InferenceServerException("failed to connect to all addresses", status="StatusCode.UNAVAILABLE")
    assert classify(unavailable) == ("connection", True)
    reset = InferenceServerException("Socket closed", status="StatusCode.UNAVAILABLE")
    assert classify(reset) == ("connection", False)
    assert classify(InferenceServerException("Deadline Exceeded", status="StatusCode.DEADLINE_EXCEEDED")) == (
        "timeout",
        False,
    )
    assert classify(InferenceServerException("unknown model", status="400")) == ("server", False)


def test_inference_error_names_model_version_and_server():
    e = InferenceError("server", "mlp", "2", "grpc://127.0.0.1:8001", "boom")
    assert "model 'mlp' version 2 on grpc://127.0.0.1:8001" in str(e)


METRICS = """# HELP nv_inference_count Number of inferences performed
# TYPE nv_inference_count counter
nv_inference_count{model="mlp",version="1"} 96
nv_inference_count{model="mlp",version="2"} 4
nv_inference_count{model="other",version="1"} 1000
# TYPE nv_inference_exec_count counter
nv_inference_exec_count{model="mlp",version="1"} 10
# TYPE nv_inference_request_success counter
nv_inference_request_success{model="mlp",version="1"} 100
# TYPE nv_inference_queue_duration_us counter
nv_inference_queue_duration_us{model="mlp",version="1"} 5000
"""


def test_metrics_sum_versions_and_give_tritons_batch_size():
    c = parse(METRICS, "mlp")
    assert c.inference_count == 100 and c.exec_count == 10
    assert c.avg_batch == 10.0
    assert c.per_request_us("queue_us") == 50.0
    assert (c - ModelCounters(inference_count=40, exec_count=5)).avg_batch == 12.0


class _InstantClient:
    """A client that answers every request after 1 ms and sets `stop` at its 300th (no server: the window's
    bookkeeping is what is tested)."""

    server = "fake://"

    def __init__(self, stop) -> None:
        self.stop, self.calls = stop, 0

    def prepare(self, inputs, model):
        return b""

    async def infer(self, model, request):
        import asyncio

        self.calls += 1
        if self.calls == 300:
            self.stop.set()
        await asyncio.sleep(0.001)

    async def close(self):
        pass


def test_a_stop_event_ends_a_time_window_early():
    import asyncio
    import threading
    import time

    from workloads.serving.loadgen import LoadSpec, run_async

    stop = threading.Event()
    spec = LoadSpec("127.0.0.1:1", "m", "grpc", concurrency=2, warmup_s=0.05, duration_s=60.0)
    client = _InstantClient(stop)
    t0 = time.perf_counter()
    r = asyncio.run(run_async(spec, client, stop=stop))
    assert time.perf_counter() - t0 < 30  # not the 60 s window
    assert r.window_s < 30 and 0 < r.ok <= client.calls < 400 and r.errors == {}


def test_a_stop_event_is_refused_for_several_processes():
    import threading

    import pytest

    from workloads.serving.loadgen import LoadSpec, run

    with pytest.raises(ValueError, match="processes 2: a stop event ends only a single-process run"):
        run(LoadSpec("127.0.0.1:1", "m", "grpc", processes=2, duration_s=1.0), stop=threading.Event())
