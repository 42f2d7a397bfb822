"""A small HTTP load generator for Triton behind the gateway: closed loop (N workers) or open loop (fixed rate).

Bounded by design: every run has a request cap and a time cap, and the target must be 127.0.0.1. Each request is
one KServe v2 inference with the input as raw bytes (Triton's binary tensor extension: no JSON float parsing on
either side) and the output as JSON, whose `model_version` says which version answered. The generator's own CPU
time per request is measured (process CPU over the run / requests) and reported with every result.
"""

from __future__ import annotations

import asyncio
import json
import ssl
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING
from urllib.parse import urlparse

import numpy as np

from workloads.serving import stats

if TYPE_CHECKING:
    from workloads.serving.fastclient import HttpConnection

LOOPBACK = "127.0.0.1"
CLIENT = "raw HTTP/1.1 keep-alive client"  # how results name the generator's client (Client below)
SERVER_HEADER = "X-Served-By"  # set by the gateway's weighted backend (stack.canary_spec)


class LoadError(ValueError):
    """A load run that would leave the bounds (target not loopback, no cap); names the field."""


@dataclass(slots=True)
class Sample:
    t_s: float  # send time, seconds from the run's start
    latency_ms: float
    status: int  # HTTP status; 0 = connection error / timeout
    version: str  # model_version of the response ("" when none)
    server: str = ""  # the gateway server that answered (response header X-Served-By), "" when none


@dataclass
class Run:
    samples: list[Sample] = field(default_factory=list)
    wall_s: float = 0.0
    cpu_s: float = 0.0  # this process' CPU time during the run
    not_sent: int = 0  # open loop: arrivals dropped because max_in_flight requests were outstanding

    @property
    def cpu_us_per_request(self) -> float:
        return 1e6 * self.cpu_s / max(1, len(self.samples))

    def ok(self) -> list[Sample]:
        return [s for s in self.samples if s.status == 200]

    def count(self, pred: Callable[[Sample], bool]) -> int:
        return sum(1 for s in self.samples if pred(s))


def infer_body(batch: int = 1, seed: int = 0) -> tuple[bytes, dict[str, str]]:
    """Body and headers of one inference of the MLP ([B,1,28,28] FP32 in, logits out as JSON)."""
    x = np.random.default_rng(seed).random((batch, 1, 28, 28), dtype=np.float32)
    raw = x.tobytes()
    header = json.dumps(
        {
            "inputs": [
                {
                    "name": "input",
                    "shape": list(x.shape),
                    "datatype": "FP32",
                    "parameters": {"binary_data_size": len(raw)},
                }
            ],
            "outputs": [{"name": "logits", "parameters": {"binary_data": False}}],
        }
    ).encode()
    headers = {"Inference-Header-Content-Length": str(len(header)), "Content-Type": "application/octet-stream"}
    return header + raw, headers


def check_target(url: str) -> None:
    host = urlparse(url).hostname
    if host != LOOPBACK:
        raise LoadError(f"url {url!r}: host {host!r}: the load generator targets only {LOOPBACK}")


def _version(body: bytes) -> str:
    try:
        return str(json.loads(body).get("model_version", ""))
    except ValueError:
        return ""


class Client:
    """Raw HTTP/1.1 requests of the same inference over keep-alive connections (the serving generator's
    fastclient.HttpConnection, with TLS and extra headers): the request's bytes are built once per header set, and
    the response is framed by its Content-Length and read for its status, X-Served-By and model_version only. It
    costs a fraction of an aiohttp session's CPU per request, which the gateway, Triton and the generator share on a
    small host. Used by both loops."""

    def __init__(
        self,
        url: str,
        headers: dict[str, str] | None = None,
        timeout_s: float = 10.0,
        ssl: object = None,
        fresh_connections: bool = False,
    ):
        """ssl: the SSLContext for an https URL (None: TLS without certificate checks). fresh_connections: one
        connection per request (HAProxy may close a connection after refusing a request whose body it did not
        read; a pooled connection would then fail on the client's side)."""
        check_target(url)
        u = urlparse(url)
        if u.scheme not in ("http", "https"):
            raise LoadError(f"url {url!r}: scheme {u.scheme!r}: allowed http, https")
        self.url, self.extra, self.timeout_s, self.fresh = url, headers or {}, timeout_s, fresh_connections
        self.host, self.port = str(u.hostname), u.port or (443 if u.scheme == "https" else 80)
        self.path = (u.path or "/") + (f"?{u.query}" if u.query else "")
        self.tls = (ssl if ssl is not None else _unverified()) if u.scheme == "https" else None
        self.body, self.headers = infer_body()
        self.headers = {**self.headers, **self.extra}
        self._requests: dict[tuple[tuple[str, str], ...], bytes] = {}
        self._idle: list[HttpConnection] = []
        self._all: set[HttpConnection] = set()

    async def __aenter__(self) -> Client:
        return self

    async def __aexit__(self, *exc: object) -> None:
        for conn in list(self._all):
            self._drop(conn)
        self._idle.clear()

    def _request(self, headers: dict[str, str]) -> bytes:
        key = tuple(headers.items())
        raw = self._requests.get(key)
        if raw is None:
            lines = [f"POST {self.path} HTTP/1.1", f"Host: {self.host}:{self.port}",
                     f"Connection: {'close' if self.fresh else 'keep-alive'}",
                     *(f"{k}: {v}" for k, v in headers.items()), f"Content-Length: {len(self.body)}"]  # fmt: skip
            raw = self._requests[key] = ("\r\n".join(lines) + "\r\n\r\n").encode() + self.body
        return raw

    async def post(self, headers: dict[str, str] | None = None) -> tuple[int, bytes, bytes]:
        """One request; (HTTP status, body, response head). Raises OSError, TimeoutError or ValueError (a response
        framed neither by Content-Length nor chunked) when there is no answer."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.timeout_s
        conn = None if self.fresh or not self._idle else self._idle.pop()
        if conn is not None and conn.broken is not None:  # the server closed an idle keep-alive connection
            self._drop(conn)
            conn = None
        try:
            if conn is None:
                # here, not at import: fastclient pulls in tritonclient, which runner modules must not load
                from workloads.serving.fastclient import HttpConnection

                _, conn = await asyncio.wait_for(
                    loop.create_connection(HttpConnection, self.host, self.port, ssl=self.tls,
                                           server_hostname=self.host if self.tls else None),
                    timeout=self.timeout_s,
                )  # fmt: skip
                self._all.add(conn)
            w = conn.waiter = loop.create_future()
            conn.transport.write(self._request(headers or self.headers))  # type: ignore[union-attr]
            status, body, _, head = await asyncio.wait_for(w, timeout=max(0.0, deadline - loop.time()))
        except BaseException:
            if conn is not None:
                self._drop(conn)
            raise
        conn.waiter = None
        if self.fresh or b"\r\nconnection: close" in head.lower():
            self._drop(conn)
        else:
            self._idle.append(conn)
        return status, body, head

    async def one(self, t0: float, headers: dict[str, str] | None = None) -> Sample:
        start = time.perf_counter()
        try:
            status, body, head = await self.post(headers)
        except (TimeoutError, OSError, ValueError):
            return Sample(start - t0, 1e3 * (time.perf_counter() - start), 0, "")
        lat = 1e3 * (time.perf_counter() - start)
        return Sample(start - t0, lat, status, _version(body) if status == 200 else "", _field(head, SERVER_HEADER))

    def _drop(self, conn: HttpConnection) -> None:
        self._all.discard(conn)
        if conn.transport is not None:
            conn.transport.abort()


def _unverified() -> ssl.SSLContext:
    """TLS that checks no certificate (an https URL given no context)."""
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    return ctx


def _field(head: bytes, name: str) -> str:
    """The value of response header `name` (any case) in a response head, '' when absent."""
    want = name.lower().encode() + b":"
    for line in head.split(b"\r\n")[1:]:
        if line.lower().startswith(want):
            return line[len(want) :].strip().decode("latin-1")
    return ""


async def closed_loop(
    client: Client,
    concurrency: int,
    max_requests: int,
    max_s: float,
    stop: asyncio.Event | None = None,
    on_sample: Callable[[Sample], None] | None = None,
    t0: float | None = None,
    backoff_s: float = 0.0,
    backoff_max_s: float = 1.0,
) -> Run:
    """`concurrency` workers, each sending its next request when the last one answers, until a cap or `stop`.

    backoff_s: a worker whose request failed (status 0 or >= 500) waits backoff_s before its next one, doubling per
    consecutive failure up to backoff_max_s, none after a success (0 = no waits, the default): a dead server then
    costs a bounded number of failed requests instead of a spin of instant connection errors (as in
    workloads/serving/loadgen.py)."""
    if concurrency < 1 or max_requests < 1 or not 0 < max_s <= 600:
        raise LoadError(
            f"concurrency {concurrency}, max_requests {max_requests}, max_s {max_s}: need >=1, >=1, (0, 600]"
        )
    if not 0 <= backoff_s <= 60 or not backoff_s <= backoff_max_s <= 60 or backoff_max_s <= 0:
        raise LoadError(f"backoff_s {backoff_s}, backoff_max_s {backoff_max_s}: need 0 <= backoff_s <= max <= 60 s")
    run = Run()
    t0, c0 = t0 if t0 is not None else time.perf_counter(), time.process_time()
    deadline = t0 + max_s
    sent = 0

    async def worker() -> None:
        nonlocal sent
        failures = 0
        while sent < max_requests and time.perf_counter() < deadline and not (stop and stop.is_set()):
            sent += 1
            s = await client.one(t0)
            run.samples.append(s)
            if on_sample:
                on_sample(s)
            failures = failures + 1 if s.status == 0 or s.status >= 500 else 0
            if failures and backoff_s > 0:
                wait = min(backoff_max_s, backoff_s * 2 ** min(failures - 1, 30))
                await asyncio.sleep(min(wait, max(0.0, deadline - time.perf_counter())))

    await asyncio.gather(*(worker() for _ in range(concurrency)))
    run.wall_s, run.cpu_s = time.perf_counter() - t0, time.process_time() - c0
    return run


async def open_loop(client: Client, rate: float, duration_s: float, max_in_flight: int = 256) -> Run:
    """Arrivals at a fixed `rate` (req/s) for `duration_s`, whatever the answers; capped at max_in_flight."""
    if not 0 < rate <= 20_000 or not 0 < duration_s <= 600 or max_in_flight < 1:
        raise LoadError(f"rate {rate}, duration_s {duration_s}, max_in_flight {max_in_flight}: out of bounds")
    run = Run()
    n = int(rate * duration_s)
    tasks: set[asyncio.Task[None]] = set()
    t0, c0 = time.perf_counter(), time.process_time()

    async def send() -> None:
        run.samples.append(await client.one(t0))

    for i in range(n):
        delay = t0 + i / rate - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        if len(tasks) >= max_in_flight:
            run.not_sent += 1
            continue
        t = asyncio.create_task(send())
        tasks.add(t)
        t.add_done_callback(tasks.discard)
    if tasks:
        await asyncio.gather(*tasks)
    run.wall_s, run.cpu_s = time.perf_counter() - t0, time.process_time() - c0
    return run


def percentile(values: list[float], p: float) -> float:
    """p-th percentile (0-100) of unsorted values, nearest rank like every other load driver of the lab; NaN for
    no values. Units of the input."""
    return stats.percentile(np.sort(np.asarray(values, dtype=np.float64)), p)
