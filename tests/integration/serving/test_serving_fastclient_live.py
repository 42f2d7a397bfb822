"""The load generator's own clients (fastclient.py, h2grpc.py) against the real tritonserver of this folder's
conftest: right outputs, the server's errors surfaced with their kind, a refused connection retried and then
reported, and the generator measuring a window through them on both protocols."""

from __future__ import annotations

import asyncio
import socket

import numpy as np
import pytest
from tritonclient.grpc import service_pb2

from workloads.serving.client import InferenceError
from workloads.serving.fastclient import GrpcLoadClient, HttpLoadClient, decode_http_response
from workloads.serving.h2grpc import GrpcH2LoadClient
from workloads.serving.loadgen import LoadSpec, run

pytestmark = pytest.mark.integration


def test_http_client_returns_what_onnxruntime_computes(triton, reference, digits):
    want = reference.run(None, {"input": digits})[0]

    async def go():
        c = HttpLoadClient(triton.address("http"))
        req = c.prepare({"input": digits}, "mlp")
        try:
            # the same connection carries request after request (keep-alive), in parallel with others
            return await asyncio.gather(*[c.infer_full("mlp", req) for _ in range(6)]), len(c._all)
        finally:
            await c.close()

    results, conns = asyncio.run(go())
    assert conns <= 6
    for status, body, hlen in results:
        assert status == 200
        np.testing.assert_allclose(decode_http_response(body, hlen)["logits"], want, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("cls", [GrpcLoadClient, GrpcH2LoadClient])
def test_grpc_client_returns_what_onnxruntime_computes(triton, reference, digits, cls):
    want = reference.run(None, {"input": digits})[0]

    async def go():
        c = cls(triton.address("grpc"))
        req = c.prepare({"input": digits}, "mlp")
        try:  # many calls in flight at once: streams of one connection for the raw HTTP/2 client
            return await asyncio.gather(*[c.infer_full("mlp", req) for _ in range(40)])
        finally:
            await c.close()

    for body in asyncio.run(go()):
        resp = service_pb2.ModelInferResponse.FromString(body)
        got = np.frombuffer(resp.raw_output_contents[0], dtype=np.float32).reshape(len(digits), 10)
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-5)


def test_raw_http2_client_sends_a_request_larger_than_a_frame_and_the_windows(triton):
    """1 MiB requests, 20 at once, far more than HTTP/2's initial 64 KiB windows: every answer complete. Whether a
    request waits for a WINDOW_UPDATE depends on how soon the server widens its windows (timing), so the waiting
    itself is tested frame by frame in tests/unit/serving/test_serving_h2grpc.py."""
    x = np.random.default_rng(0).random((335, 1, 28, 28), dtype=np.float32)  # 1.05 MB of tensor

    async def go():
        c = GrpcH2LoadClient(triton.address("grpc"), timeout_s=60)
        req = c.prepare({"input": x}, "mlp_zero")  # no max batch size: the whole 335 rows in one request
        try:
            bodies = await asyncio.gather(*[c.infer_full("mlp_zero", req) for _ in range(20)])
            return bodies
        finally:
            await c.close()

    bodies = asyncio.run(go())
    assert len(bodies) == 20
    for body in bodies:
        resp = service_pb2.ModelInferResponse.FromString(body)
        assert np.frombuffer(resp.raw_output_contents[0], dtype=np.float32).shape == (335 * 10,)


def test_raw_http2_client_times_out_a_stream_and_keeps_the_connection(triton, digits):
    """A call given 1 ms on a model whose queue holds it up to 200 ms (mlp_batch) is cancelled with RST_STREAM and
    reported as a timeout; the next call on the same connection succeeds. The connection is opened by a first call
    with a normal timeout: 1 ms can run out while connecting on a loaded host, which is a timeout with no connection
    to keep."""

    async def go():
        c = GrpcH2LoadClient(triton.address("grpc"))
        try:
            await c.infer("mlp", c.prepare({"input": digits}, "mlp"))
            c.timeout_s = 0.001
            with pytest.raises(InferenceError) as slow:
                await c.infer("mlp_batch", c.prepare({"input": digits[:1]}, "mlp_batch"))
            conn = c._conn
            c.timeout_s = 10
            await c.infer("mlp", c.prepare({"input": digits}, "mlp"))
            return slow.value, conn is c._conn
        finally:
            await c.close()

    slow, same = asyncio.run(go())
    assert slow.kind == "timeout" and same


@pytest.mark.parametrize(
    "cls,protocol", [(HttpLoadClient, "http"), (GrpcLoadClient, "grpc"), (GrpcH2LoadClient, "grpc")]
)
def test_server_errors_keep_their_kind_and_message(triton, digits, cls, protocol):
    async def go():
        c = cls(triton.address(protocol))
        try:
            with pytest.raises(InferenceError) as unknown:
                await c.infer("no_such_model", c.prepare({"input": digits}, "no_such_model"))
            with pytest.raises(InferenceError) as shape:
                await c.infer("mlp", c.prepare({"input": digits[:, :, :10, :]}, "mlp"))
            await c.infer("mlp", c.prepare({"input": digits}, "mlp"))  # the connection is still usable
        finally:
            await c.close()
        return unknown.value, shape.value

    unknown, shape = asyncio.run(go())
    assert unknown.kind == "server" and "no_such_model" in str(unknown)
    assert shape.kind == "server" and "unexpected shape" in str(shape)


@pytest.mark.parametrize("cls", [HttpLoadClient, GrpcH2LoadClient])
def test_refused_connection_is_retried_then_reported_as_connection(cls):
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]

    async def go():
        c = cls(f"127.0.0.1:{port}", retries=2, backoff_s=0.01)
        try:
            await c.infer("mlp", c.prepare({"input": np.zeros((1, 1, 28, 28), np.float32)}, "mlp"))
        finally:
            await c.close()

    with pytest.raises(InferenceError) as exc:
        asyncio.run(go())
    assert exc.value.kind == "connection"


@pytest.mark.parametrize("protocol", ["http", "grpc"])
def test_generator_measures_a_window_through_its_clients(triton, protocol):
    r = run(LoadSpec(triton.address(protocol), "mlp", protocol, concurrency=8, warmup_s=0.2, requests=1000))
    assert r.ok == 1000 and r.errors == {}
    assert r.client.startswith("HttpLoadClient" if protocol == "http" else "GrpcH2LoadClient")
    assert r.generator_cpu_us_per_request > 0


def test_clientbench_measures_cpu_per_request_of_a_variant_in_its_own_process(triton):
    from workloads.serving import clientbench

    urls = {p: triton.address(p) for p in ("http", "grpc")}
    rows = clientbench.bench(urls, "mlp", ["http_asyncio", "no_such_variant"], [2], 0.2, 0.5, server_pid=triton.pid)
    ok, bad = rows
    assert ok["variant"] == "http_asyncio" and ok["requests"] > 0 and ok["cpu_us_per_request"] > 0
    assert 0 < ok["p50_ms"] <= ok["p99_ms"] and "server_cores" in ok
    assert "no_such_variant" in bad["error"]  # a variant that cannot run is a row that says why, not a crash
