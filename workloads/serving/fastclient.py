"""The load generator's cheap clients: one request serialised once, sent as bytes many times.

The load generator sends the same request over and over, so everything tritonclient does per call (build the
request object, serialise the tensors, parse the response into numpy, wrap errors) is CPU taken from the server
on a small host. These clients do the per-request minimum:

- HttpLoadClient: Triton's KServe v2 HTTP/1.1 endpoint with the binary-tensor extension, over keep-alive
  connections (one per request in flight, as perf_analyzer -i http keeps them) written with asyncio Protocols:
  the request's bytes are built once by `http_request()`; a response is framed by its Content-Length and only its
  status code is looked at (the body is kept for callers that decode it: `decode_http_response()`).
- GrpcLoadClient: grpc.aio with a serialised ModelInferRequest and the response kept as bytes (no protobuf
  build or parse per call). The generator's gRPC client is h2grpc.GrpcH2LoadClient (the same request as raw HTTP/2
  frames, without grpcio's per-call cost); this one stays as clientbench's grpc.aio variant.

Both expose the interface the load generator drives (`prepare(inputs, model)`, `await infer(model, prepared)`,
`await close()`, `server`) and raise client.InferenceError with the same kinds and the same retry rule as
client.AsyncClient (only a refused connection, which provably sent nothing, is retried).
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

import numpy as np

from workloads.serving.client import InferenceError

_DTYPES = {"float32": "FP32", "float64": "FP64", "float16": "FP16", "int64": "INT64", "int32": "INT32",
           "int16": "INT16", "int8": "INT8", "uint8": "UINT8", "bool": "BOOL"}  # fmt: skip
_NP = {v: k for k, v in _DTYPES.items()}


def _triton_dtype(arr: np.ndarray) -> str:
    try:
        return _DTYPES[arr.dtype.name]
    except KeyError:
        raise ValueError(f"input dtype {arr.dtype.name!r}: allowed {', '.join(_DTYPES)}") from None


def http_request(
    host: str,
    model: str,
    inputs: dict[str, np.ndarray],
    outputs: list[str] | None = None,
    version: str = "",
    priority: int = 0,
) -> bytes:
    """A complete HTTP/1.1 keep-alive POST of a KServe v2 inference request, tensors as binary data (bytes);
    `priority` > 0 is sent as Triton's schedule-policy request parameter."""
    head: dict[str, Any] = {"inputs": []}
    blobs = []
    for name, arr in inputs.items():
        arr = np.ascontiguousarray(arr)
        blob = arr.tobytes()
        head["inputs"].append(
            {"name": name, "shape": list(arr.shape), "datatype": _triton_dtype(arr),
             "parameters": {"binary_data_size": len(blob)}}
        )  # fmt: skip
        blobs.append(blob)
    if outputs:
        head["outputs"] = [{"name": n, "parameters": {"binary_data": True}} for n in outputs]
    else:
        head["parameters"] = {"binary_data_output": True}
    if priority:
        head.setdefault("parameters", {})["priority"] = priority
    js = json.dumps(head, separators=(",", ":")).encode()
    body = js + b"".join(blobs)
    path = f"/v2/models/{model}" + (f"/versions/{version}" if version else "") + "/infer"
    return (
        f"POST {path} HTTP/1.1\r\nHost: {host}\r\nConnection: keep-alive\r\n"
        f"Content-Type: application/octet-stream\r\nInference-Header-Content-Length: {len(js)}\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    ).encode() + body


def grpc_request(inputs: dict[str, np.ndarray], model: str, version: str = "", priority: int = 0) -> bytes:
    """A serialised ModelInferRequest with the tensors as raw contents; `priority` > 0 as Triton's schedule-policy
    request parameter."""
    from tritonclient.grpc import service_pb2

    req = service_pb2.ModelInferRequest(model_name=model, model_version=version)
    if priority:
        req.parameters["priority"].uint64_param = priority
    for name, arr in inputs.items():
        arr = np.ascontiguousarray(arr)
        req.inputs.add(name=name, datatype=_triton_dtype(arr), shape=list(arr.shape))
        req.raw_input_contents.append(arr.tobytes())
    return req.SerializeToString()


def host_port(url: str) -> tuple[str, str, int]:
    """("host:port", host, port) of a client URL given as host:port, with or without http:// or grpc://."""
    bare = url.removeprefix("http://").removeprefix("grpc://")
    host, _, port = bare.rpartition(":")
    if not host or not port.isdigit():
        raise ValueError(f"url {url!r}: expected host:port")
    return bare, host, int(port)


def _header(head: bytes, name: bytes) -> int | None:
    """Integer value of header `name` (lower case) in a lower-cased response head, or None."""
    at = head.find(b"\r\n" + name + b":")
    if at < 0:
        return None
    start = at + len(name) + 3
    end = head.find(b"\r\n", start)
    return int(head[start : end if end >= 0 else len(head)])


def parse_response(buf: bytearray) -> tuple[int, bytes, int | None, int] | None:
    """(status, body, inference header length or None, bytes consumed) of the first complete response in buf,
    or None while it is incomplete. Bodies framed by Content-Length (Triton) or chunked (a proxy may re-frame);
    anything else raises ValueError."""
    end = buf.find(b"\r\n\r\n")
    if end < 0:
        return None
    head = bytes(buf[:end]).lower()
    start = end + 4
    length = _header(head, b"content-length")
    if length is not None:
        if len(buf) < start + length:
            return None
        body, used = bytes(buf[start : start + length]), start + length
    elif b"\r\ntransfer-encoding: chunked" in head:
        parts, at = [], start
        while True:
            eol = buf.find(b"\r\n", at)
            if eol < 0:
                return None
            size = int(bytes(buf[at:eol]).split(b";")[0], 16)
            if len(buf) < eol + 2 + size + 2:
                return None
            parts.append(bytes(buf[eol + 2 : eol + 2 + size]))
            at = eol + 2 + size + 2
            if size == 0:  # no trailers are sent by Triton or HAProxy here
                break
        body, used = b"".join(parts), at
    else:
        raise ValueError(f"response framed neither by Content-Length nor chunked: {bytes(buf[:end])[:200]!r}")
    return int(head[9:12]), body, _header(head, b"inference-header-content-length"), used


def decode_http_response(body: bytes, header_len: int | None) -> dict[str, np.ndarray]:
    """{output name: array} of a KServe v2 response body (JSON outputs or binary-data outputs)."""
    js = json.loads(body[: header_len if header_len is not None else len(body)])
    out, at = {}, header_len or 0
    for o in js["outputs"]:
        dt = np.dtype(_NP[o["datatype"]])
        size = o.get("parameters", {}).get("binary_data_size")
        if size is None:
            out[o["name"]] = np.asarray(o["data"], dtype=dt).reshape(o["shape"])
        else:
            out[o["name"]] = np.frombuffer(body[at : at + size], dtype=dt).reshape(o["shape"])
            at += size
    return out


class HttpConnection(asyncio.Protocol):
    """One keep-alive connection; at most one request in flight on it. Its waiter gets (status, body, inference
    header length, the response head as received) once a whole response is in."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.buf = bytearray()
        self.waiter: asyncio.Future[tuple[int, bytes, int | None, bytes]] | None = None
        self.broken: BaseException | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        self.buf += data
        w = self.waiter
        if w is None or w.done():
            return
        try:
            r = parse_response(self.buf)
        except ValueError as exc:
            self.broken = exc
            w.set_exception(exc)
            return
        if r is not None:
            status, body, hlen, used = r
            head = bytes(self.buf[: self.buf.find(b"\r\n\r\n")])
            del self.buf[:used]
            w.set_result((status, body, hlen, head))

    def connection_lost(self, exc: Exception | None) -> None:
        self.broken = exc or ConnectionResetError("server closed the connection")
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_exception(self.broken)


class HttpLoadClient:
    """Pre-serialised KServe v2 requests over raw HTTP/1.1 keep-alive connections (asyncio)."""

    def __init__(self, url: str, timeout_s: float = 10.0, retries: int = 0, backoff_s: float = 0.05) -> None:
        self.url, self.host, self.port = host_port(url)
        self.server = f"http://{self.url}"
        self.timeout_s, self.retries, self.backoff_s = timeout_s, retries, backoff_s
        self._idle: list[HttpConnection] = []
        self._all: set[HttpConnection] = set()

    def prepare(self, inputs: dict[str, np.ndarray], model: str = "", version: str = "", priority: int = 0) -> bytes:
        """The request's bytes, built once (pass them to infer)."""
        return http_request(self.url, model, inputs, version=version, priority=priority)

    async def _connect(self, model: str) -> HttpConnection:
        loop = asyncio.get_running_loop()
        for attempt in range(self.retries + 1):
            try:
                _, conn = await asyncio.wait_for(
                    loop.create_connection(HttpConnection, self.host, self.port), timeout=self.timeout_s
                )
                self._all.add(conn)
                return conn
            except ConnectionRefusedError as exc:  # the handshake failed: nothing was sent, safe to try again
                if attempt == self.retries:
                    raise InferenceError("connection", model, "", self.server, str(exc)) from exc
                await asyncio.sleep(self.backoff_s * 2**attempt)
            except (TimeoutError, OSError) as exc:
                kind = "timeout" if isinstance(exc, TimeoutError) else "connection"
                raise InferenceError(kind, model, "", self.server, str(exc) or type(exc).__name__) from exc
        raise AssertionError("unreachable")

    async def infer_full(self, model: str, request: bytes) -> tuple[int, bytes, int | None]:
        """Send one prepared request; (status, body, inference header length). Raises InferenceError."""
        conn = self._idle.pop() if self._idle else None
        if conn is None or conn.broken is not None:  # the server closed an idle keep-alive connection
            if conn is not None:
                self._drop(conn)
            conn = await self._connect(model)
        loop = asyncio.get_running_loop()
        w = conn.waiter = loop.create_future()
        timer = loop.call_later(self.timeout_s, _expire, w)
        try:
            conn.transport.write(request)  # type: ignore[union-attr]
            status, body, hlen, _ = await w
        except TimeoutError as exc:
            self._drop(conn)  # a late response would be read as the next request's
            raise InferenceError("timeout", model, "", self.server, f"no response in {self.timeout_s:g} s") from exc
        except (ConnectionError, OSError, ValueError) as exc:
            self._drop(conn)
            raise InferenceError("connection", model, "", self.server, repr(exc)) from exc
        finally:
            timer.cancel()
            conn.waiter = None
        self._idle.append(conn)
        if status != 200:
            raise InferenceError(
                "server", model, "", self.server, f"HTTP {status}: {body[:500].decode(errors='replace')}"
            )
        return status, body, hlen

    async def infer(self, model: str, request: bytes) -> None:
        """Send one prepared request and wait for a successful response (the load generator's call)."""
        await self.infer_full(model, request)

    def _drop(self, conn: HttpConnection) -> None:
        self._all.discard(conn)
        if conn.transport is not None:
            conn.transport.abort()

    async def close(self) -> None:
        for conn in list(self._all):
            self._drop(conn)
        self._idle.clear()


def _expire(w: asyncio.Future[Any]) -> None:
    if not w.done():
        w.set_exception(TimeoutError())


class GrpcLoadClient:
    """grpc.aio with the request serialised once and the response kept as bytes (no protobuf work per call)."""

    def __init__(self, url: str, timeout_s: float = 10.0, retries: int = 0, backoff_s: float = 0.05) -> None:
        import grpc

        self.url = url.removeprefix("http://")
        self.server = f"grpc://{self.url}"
        self.timeout_s, self.retries, self.backoff_s = timeout_s, retries, backoff_s
        opts = [("grpc.max_send_message_length", 2**31 - 1), ("grpc.max_receive_message_length", 2**31 - 1)]
        self._channel = grpc.aio.insecure_channel(self.url, options=opts)
        # No serializer/deserializer: bytes in, bytes out.
        self._call = self._channel.unary_unary("/inference.GRPCInferenceService/ModelInfer")

    def prepare(self, inputs: dict[str, np.ndarray], model: str = "", version: str = "", priority: int = 0) -> bytes:
        """A serialised ModelInferRequest (bytes), built once; `priority` > 0 as Triton's request parameter."""
        return grpc_request(inputs, model, version, priority)

    async def infer_full(self, model: str, request: bytes) -> bytes:
        """Send one prepared request; the serialised ModelInferResponse. Raises InferenceError."""
        import grpc
        from tritonclient.utils import InferenceServerException

        from workloads.serving.client import classify

        for attempt in range(self.retries + 1):
            try:
                return await self._call(request, timeout=self.timeout_s)
            except grpc.aio.AioRpcError as exc:
                err = InferenceServerException(msg=exc.details(), status=str(exc.code()))
                kind, safe = classify(err)
                if not safe or attempt == self.retries:
                    raise InferenceError(kind, model, "", self.server, str(err)) from exc
                await asyncio.sleep(self.backoff_s * 2**attempt)
        raise AssertionError("unreachable")

    async def infer(self, model: str, request: bytes) -> None:
        """Send one prepared request and wait for a successful response (the load generator's call)."""
        await self.infer_full(model, request)

    async def close(self) -> None:
        await self._channel.close()
