"""The load generator's raw HTTP framing and the d32.e1 agreement rule, without a server (the live tests are in
tests/integration/serving/test_serving_fastclient_live.py)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from workloads.serving.experiments.drivers import DriversParams, agreement, split_verdicts
from workloads.serving.fastclient import decode_http_response, http_request, parse_response


def test_request_is_a_complete_kserve_v2_binary_post():
    x = np.arange(6, dtype=np.float32).reshape(1, 6)
    raw = http_request("127.0.0.1:8000", "mlp", {"input": x}, version="2")
    head, body = raw.split(b"\r\n\r\n", 1)
    lines = head.decode().split("\r\n")
    assert lines[0] == "POST /v2/models/mlp/versions/2/infer HTTP/1.1"
    fields = dict(line.split(": ", 1) for line in lines[1:])
    assert int(fields["Content-Length"]) == len(body)
    n = int(fields["Inference-Header-Content-Length"])
    js = json.loads(body[:n])
    assert js["inputs"] == [
        {"name": "input", "shape": [1, 6], "datatype": "FP32", "parameters": {"binary_data_size": 24}}
    ]
    assert np.array_equal(np.frombuffer(body[n:], dtype=np.float32), x.ravel())


def test_a_priority_is_sent_as_tritons_request_parameter_over_http_and_grpc():
    from tritonclient.grpc import service_pb2

    from workloads.serving.fastclient import GrpcLoadClient

    x = np.zeros((1, 4), dtype=np.float32)

    def header(raw: bytes) -> dict:
        head, body = raw.split(b"\r\n\r\n", 1)
        n = int(
            dict(line.split(": ", 1) for line in head.decode().split("\r\n")[1:])["Inference-Header-Content-Length"]
        )
        return json.loads(body[:n])

    assert header(http_request("h:1", "m", {"input": x}, priority=1))["parameters"] == {
        "binary_data_output": True,
        "priority": 1,
    }
    assert "priority" not in header(http_request("h:1", "m", {"input": x}))["parameters"]  # 0: the model's default
    req = service_pb2.ModelInferRequest.FromString(GrpcLoadClient.prepare(None, {"input": x}, "m", priority=2))  # type: ignore[arg-type]
    assert req.parameters["priority"].uint64_param == 2
    assert (
        "priority"
        not in service_pb2.ModelInferRequest.FromString(GrpcLoadClient.prepare(None, {"input": x}, "m")).parameters
    )  # type: ignore[arg-type]


@pytest.mark.parametrize("bad", [-1, 2**32, True, 1.0])
def test_a_priority_outside_tritons_range_is_refused_naming_the_field(bad):
    from workloads.serving.loadgen import LoadSpec

    with pytest.raises(ValueError, match=f"priority {bad!r}: allowed an integer 0..4294967295"):
        LoadSpec("127.0.0.1:1", "m", priority=bad).check()


def test_unsupported_dtype_is_refused_naming_it():
    with pytest.raises(ValueError, match="input dtype 'complex64'"):
        http_request("h:1", "m", {"input": np.zeros(2, dtype=np.complex64)})


def _response(body: bytes, header_len: int | None = None, status: str = "200 OK") -> bytes:
    extra = f"Inference-Header-Content-Length: {header_len}\r\n" if header_len is not None else ""
    return (
        f"HTTP/1.1 {status}\r\nContent-Type: application/json\r\n{extra}Content-Length: {len(body)}\r\n\r\n".encode()
        + body
    )


def test_responses_are_framed_by_content_length_and_kept_apart():
    one, two = _response(b'{"a":1}'), _response(b"{}", status="400 Bad Request")
    buf = bytearray(one + two)
    status, body, hlen, used = parse_response(buf)
    assert (status, body, hlen, used) == (200, b'{"a":1}', None, len(one))
    del buf[:used]
    assert parse_response(buf)[:2] == (400, b"{}")
    assert parse_response(bytearray(one[:-1])) is None  # body incomplete
    assert parse_response(bytearray(one[:20])) is None  # head incomplete


def test_chunked_bodies_are_joined_and_unframed_ones_refused():
    raw = b"HTTP/1.1 429 Too Many Requests\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\nNEXT"
    status, body, _, used = parse_response(bytearray(raw))
    assert (status, body, raw[used:]) == (429, b"abcde", b"NEXT")
    assert parse_response(bytearray(raw[:-10])) is None
    with pytest.raises(ValueError, match="neither by Content-Length nor chunked"):
        parse_response(bytearray(b"HTTP/1.0 200 OK\r\nServer: x\r\n\r\nbody"))


def test_binary_and_json_outputs_decode_to_arrays():
    logits = np.arange(10, dtype=np.float32).reshape(1, 10)
    head = {"outputs": [{"name": "logits", "datatype": "FP32", "shape": [1, 10],
                         "parameters": {"binary_data_size": 40}}]}  # fmt: skip
    js = json.dumps(head).encode()
    got = decode_http_response(js + logits.tobytes(), len(js))
    np.testing.assert_array_equal(got["logits"], logits)
    as_json = {"outputs": [{"name": "y", "datatype": "INT64", "shape": [2], "data": [3, 4]}]}
    assert decode_http_response(json.dumps(as_json).encode(), None)["y"].tolist() == [3, 4]


def test_agreement_is_met_only_when_every_measure_is_within_ten_percent():
    ref = {"throughput": 1000.0, "p50": 2.0, "p95": 4.0, "p99": 8.0}
    assert agreement({"throughput": 1090.0, "p50": 1.85, "p95": 4.3, "p99": 7.3}, ref) == ("MET", [])
    verdict, off = agreement({"throughput": 880.0, "p50": 2.0, "p95": 4.0, "p99": 9.0}, ref)
    assert verdict == "NOT MET" and off == ["throughput 88 %", "p99 112 %"]
    assert agreement({"throughput": 1000.0, "p50": 2.0, "p95": 4.0, "p99": 8.0}, {})[0] == "NOT MET"


def test_throughput_and_percentiles_are_judged_apart():
    """A cheaper client reads the same throughput with lower percentiles: throughput MET, percentiles NOT MET."""
    ref = {"throughput": 1000.0, "p50": 2.0, "p95": 4.0, "p99": 8.0}
    assert split_verdicts({"throughput": 1050.0, "p50": 1.5, "p95": 4.0, "p99": 8.0}, ref) == ("MET", "NOT MET")
    assert split_verdicts({"throughput": 1150.0, "p50": 2.1, "p95": 3.8, "p99": 8.5}, ref) == ("NOT MET", "MET")
    assert split_verdicts({"throughput": 950.0, "p50": 2.1, "p95": 3.8, "p99": 8.5}, ref) == ("MET", "MET")


def test_drivers_params_refuse_an_unknown_protocol_naming_the_field():
    with pytest.raises(ValueError, match="protocols"):
        DriversParams(protocols=["h2c"])
    with pytest.raises(ValueError, match="repeats"):
        DriversParams(repeats=0)
