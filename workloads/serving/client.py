"""Triton clients over HTTP or gRPC, sync and asyncio, with timeouts, safe retries and errors that say where.

    with Client("127.0.0.1:8000", "http") as c:
        logits = c.infer("mlp", {"input": x})["logits"]

Retries: only when the request provably never reached the server (TCP connection refused; gRPC UNAVAILABLE
while connecting). Once a request may have been sent, it may have executed: inference is not guaranteed
idempotent (a stateful/sequence model, a side-effecting python model, a double-counted metric), and a retry
after a timeout would also add load exactly when the server is already slow. Those errors go to the caller.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from typing import Any

import grpc
import numpy as np
import tritonclient.grpc as grpcclient
import tritonclient.grpc.aio as grpcaio
import tritonclient.http as httpclient
import tritonclient.http.aio as httpaio
from tritonclient.grpc import service_pb2, service_pb2_grpc
from tritonclient.utils import InferenceServerException, np_to_triton_dtype

PROTOCOLS = ("http", "grpc")


class InferenceError(RuntimeError):
    """An inference or control call that failed; names model, version and server, and classifies the failure."""

    def __init__(self, kind: str, model: str, version: str, server: str, detail: str) -> None:
        self.kind = kind  # connection | timeout | server | client
        self.model, self.version, self.server, self.detail = model, version, server, detail
        super().__init__(f"model {model!r} version {version or 'latest'} on {server}: {kind} error: {detail}")


def classify(exc: BaseException) -> tuple[str, bool]:
    """(kind, safe_to_retry) for an exception raised by a tritonclient call."""
    text = str(exc)
    if isinstance(exc, ConnectionRefusedError) or "Connection refused" in text or "Cannot connect to host" in text:
        return "connection", True  # the TCP handshake failed: nothing was sent
    if isinstance(exc, InferenceServerException):
        status = str(exc.status() or "")
        if "UNAVAILABLE" in status and ("failed to connect" in text.lower() or "connection refused" in text.lower()):
            return "connection", True  # gRPC could not open the channel: nothing was sent
        if "DEADLINE_EXCEEDED" in status or "timed out" in text.lower() or "Deadline" in text:
            return "timeout", False
        if "UNAVAILABLE" in status:
            return "connection", False  # the connection broke after the request may have gone out
        return "server", False
    if isinstance(exc, TimeoutError | asyncio.TimeoutError) or "timeout" in type(exc).__name__.lower():
        return "timeout", False
    if isinstance(exc, ConnectionError | OSError) or "Disconnected" in type(exc).__name__:
        return "connection", False  # e.g. aiohttp's ServerDisconnectedError: the request may have been sent
    return "client", False


def _inputs(mod: Any, arrays: dict[str, np.ndarray]) -> list[Any]:
    out = []
    for name, arr in arrays.items():
        arr = np.ascontiguousarray(arr)
        i = mod.InferInput(name, list(arr.shape), np_to_triton_dtype(arr.dtype))
        if mod is httpclient:
            i.set_data_from_numpy(arr, binary_data=True)
        else:
            i.set_data_from_numpy(arr)
        out.append(i)
    return out


def _outputs(mod: Any, names: list[str] | None) -> list[Any] | None:
    if not names:
        return None
    if mod is httpclient:
        return [mod.InferRequestedOutput(n, binary_data=True) for n in names]
    return [mod.InferRequestedOutput(n) for n in names]


def output_names(res: Any, protocol: str) -> list[str]:
    """Names of the outputs in an InferResult of either protocol."""
    resp = res.get_response(as_json=True) if protocol == "grpc" else res.get_response()
    return [o["name"] for o in resp["outputs"]]


@dataclass
class _Base:
    url: str  # host:port
    protocol: str = "http"
    timeout_s: float = 10.0
    retries: int = 3  # connection attempts that failed before sending; nothing else is retried
    backoff_s: float = 0.2

    def __post_init__(self) -> None:
        if self.protocol not in PROTOCOLS:
            raise ValueError(f"protocol {self.protocol!r}: allowed {', '.join(PROTOCOLS)}")
        self.url = self.url.removeprefix("http://")
        self.server = f"{self.protocol}://{self.url}"
        self.mod = httpclient if self.protocol == "http" else grpcclient


class Client(_Base):
    """Synchronous client (one connection; not for concurrent use from several threads)."""

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.protocol == "http":
            self.c = httpclient.InferenceServerClient(
                self.url, connection_timeout=self.timeout_s, network_timeout=self.timeout_s
            )
        else:
            self.c = grpcclient.InferenceServerClient(self.url)

    def _call(self, model: str, version: str, fn: Any, *args: Any, **kw: Any) -> Any:
        for attempt in range(self.retries + 1):
            try:
                return fn(*args, **kw)
            except Exception as exc:
                kind, safe = classify(exc)
                if not safe or attempt == self.retries:
                    raise InferenceError(kind, model, version, self.server, str(exc)) from exc
                time.sleep(self.backoff_s * 2**attempt)
        raise AssertionError("unreachable")

    def infer(
        self, model: str, inputs: dict[str, np.ndarray], outputs: list[str] | None = None, version: str = ""
    ) -> dict[str, np.ndarray]:
        """Run one inference; returns {output name: array}."""
        kw: dict[str, Any] = {"model_version": version, "outputs": _outputs(self.mod, outputs)}
        if self.protocol == "grpc":
            kw["client_timeout"] = self.timeout_s
        res = self._call(model, version, self.c.infer, model, _inputs(self.mod, inputs), **kw)
        return {n: res.as_numpy(n) for n in outputs or output_names(res, self.protocol)}

    def is_ready(self, model: str, version: str = "") -> bool:
        return bool(self._call(model, version, self.c.is_model_ready, model, version))

    def load(self, model: str) -> None:
        self._call(model, "", self.c.load_model, model)

    def unload(self, model: str) -> None:
        self._call(model, "", self.c.unload_model, model)

    def repository_index(self) -> list[dict[str, Any]]:
        idx = self._call(
            "*", "", self.c.get_model_repository_index, **({"as_json": True} if self.protocol == "grpc" else {})
        )
        return list(idx.get("models", [])) if isinstance(idx, dict) else list(idx)

    def close(self) -> None:
        self.c.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class AsyncClient(_Base):
    """asyncio client; one instance serves many concurrent requests (the load generator's client)."""

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.protocol == "http":
            self.c = httpaio.InferenceServerClient(self.url, conn_limit=1024, conn_timeout=self.timeout_s)
        else:
            self.c = grpcaio.InferenceServerClient(self.url)
        self._channel: Any = None
        self._stub: Any = None

    def prepare(self, inputs: dict[str, np.ndarray], model: str = "", version: str = "") -> Any:
        """Serialise a request once, to send it many times (load tests); pass the result to infer().

        For gRPC this is a complete ModelInferRequest sent on a plain grpc.aio stub: tritonclient would rebuild
        the protobuf and copy the tensors on every call, which costs the generator ~25 % more CPU per request.
        """
        if self.protocol == "http":
            return _inputs(self.mod, inputs)
        req = service_pb2.ModelInferRequest(model_name=model, model_version=version)
        for name, arr in inputs.items():
            arr = np.ascontiguousarray(arr)
            req.inputs.add(name=name, datatype=np_to_triton_dtype(arr.dtype), shape=list(arr.shape))
            req.raw_input_contents.append(arr.tobytes())
        if self._stub is None:
            opts = [("grpc.max_send_message_length", 2**31 - 1), ("grpc.max_receive_message_length", 2**31 - 1)]
            self._channel = grpc.aio.insecure_channel(self.url, options=opts)
            self._stub = service_pb2_grpc.GRPCInferenceServiceStub(self._channel)
        return req

    async def infer(
        self,
        model: str,
        inputs: dict[str, np.ndarray] | list[Any],
        outputs: list[str] | None = None,
        version: str = "",
    ) -> Any:
        """Run one inference; returns tritonclient's InferResult (call .as_numpy(name)), or for a prepared
        gRPC request the raw ModelInferResponse."""
        if isinstance(inputs, service_pb2.ModelInferRequest):
            return await self._infer_raw(inputs)
        ins = inputs if isinstance(inputs, list) else _inputs(self.mod, inputs)
        outs = _outputs(self.mod, outputs)
        for attempt in range(self.retries + 1):
            try:
                if self.protocol == "grpc":
                    return await self.c.infer(
                        model, ins, model_version=version, outputs=outs, client_timeout=self.timeout_s
                    )
                return await self.c.infer(model, ins, model_version=version, outputs=outs)
            except Exception as exc:
                kind, safe = classify(exc)
                if not safe or attempt == self.retries:
                    raise InferenceError(kind, model, version, self.server, str(exc)) from exc
                await asyncio.sleep(self.backoff_s * 2**attempt)
        raise AssertionError("unreachable")

    async def _infer_raw(self, req: Any) -> Any:
        for attempt in range(self.retries + 1):
            try:
                return await self._stub.ModelInfer(req, timeout=self.timeout_s)
            except grpc.aio.AioRpcError as exc:
                err = InferenceServerException(msg=exc.details(), status=str(exc.code()))
                kind, safe = classify(err)
                if not safe or attempt == self.retries:
                    raise InferenceError(kind, req.model_name, req.model_version, self.server, str(err)) from exc
                await asyncio.sleep(self.backoff_s * 2**attempt)
        raise AssertionError("unreachable")

    async def close(self) -> None:
        if self._channel is not None:
            await self._channel.close()
        await self.c.close()

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()
