"""gRPC for the load generator without grpcio: Triton's ModelInfer as HTTP/2 frames on one asyncio connection.

grpc.aio costs the generator 125-155 µs of CPU per request here (d32.e1's client_cpu table), three to four times the
raw HTTP/1.1 client, and every µs of it is taken from tritonserver on a 2-core host; its completion-queue thread and
the asyncio loop also add client-side latency to every request. A load generator sends one unary call, the same one,
over and over, so this client does only what that needs of HTTP/2 (RFC 9113) and of gRPC's wire format
(grpc/doc/PROTOCOL-HTTP2.md), on the event loop itself:

- one connection, every request in flight a stream on it (as a grpc channel multiplexes them);
- a request: one HEADERS frame whose header block is built once (HPACK literals that touch no table, RFC 7541
  6.2.2) and DATA frames carrying the length-prefixed message, the last one with END_STREAM;
- a response: HEADERS, DATA, trailers with `grpc-status` (or a trailers-only response); every header block the
  server sends is decoded in order by `hpack` (its dynamic table must follow the server's), and a block of indexed
  fields only, which changes no table, is looked up in a cache instead;
- flow control both ways: our connection window topped up (WINDOW_UPDATE), streams opened with the largest window;
  the server's connection and stream windows respected when sending (data waits for its WINDOW_UPDATE), its
  SETTINGS honoured (initial window, frame size, concurrent streams) and acknowledged, its PINGs answered;
- GOAWAY: streams above its last stream id fail as never processed (safe to retry); new streams go to a new
  connection; RST_STREAM fails its stream; a timeout cancels the stream with RST_STREAM(CANCEL).

Interface and failure kinds as fastclient.GrpcLoadClient: `prepare(inputs, model)`, `await infer(model, prepared)`,
`await infer_full(...)` (the serialised ModelInferResponse), `await close()`, `server`; client.InferenceError with
kind connection / timeout / server, and only what provably reached no server (a refused connection, a stream
refused by GOAWAY or REFUSED_STREAM) retried.
"""

from __future__ import annotations

import asyncio
import struct
from collections import deque

import numpy as np

from workloads.serving.client import InferenceError

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
DATA, HEADERS, PRIORITY, RST_STREAM, SETTINGS, PUSH_PROMISE, PING, GOAWAY, WINDOW_UPDATE, CONTINUATION = range(10)
END_STREAM = ACK = 0x1
END_HEADERS, PADDED, PRIORITY_FLAG = 0x4, 0x8, 0x20
S_HEADER_TABLE_SIZE, S_ENABLE_PUSH, S_MAX_CONCURRENT_STREAMS, S_INITIAL_WINDOW_SIZE, S_MAX_FRAME_SIZE = 1, 2, 3, 4, 5
MAX_WINDOW = 2**31 - 1
DEFAULT_WINDOW = 65535
TOPUP_BYTES = 1 << 20  # connection window given back once this much DATA has arrived
CANCEL, REFUSED_STREAM = 0x8, 0x7
METHOD = b"/inference.GRPCInferenceService/ModelInfer"
_FH = struct.Struct(">IBI")  # 24-bit length << 8 | type, flags, stream id
_U32 = struct.Struct(">I")
# grpc-status codes (grpc/doc/statuscodes.md) that name the failure kind the load generator counts
_TIMEOUT_CODES, _CONNECTION_CODES = {4}, {14}  # DEADLINE_EXCEEDED; UNAVAILABLE


def frame(ftype: int, flags: int, stream: int, payload: bytes = b"") -> bytes:
    return _FH.pack((len(payload) << 8) | ftype, flags, stream) + payload


def hpack_int(value: int, prefix_bits: int, first: int = 0) -> bytes:
    """RFC 7541 5.1 integer with an N-bit prefix (`first` holds the bits above the prefix)."""
    top = (1 << prefix_bits) - 1
    if value < top:
        return bytes([first | value])
    out, value = [first | top], value - top
    while value >= 0x80:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def grpc_timeout(seconds: float) -> bytes:
    """The grpc-timeout header value for a deadline `seconds` away (at most 8 digits, in ms or in s)."""
    ms = max(1, round(seconds * 1000))
    return f"{ms}m".encode() if ms < 10**8 else f"{min(round(seconds), 10**8 - 1)}S".encode()


def header_block(authority: str, timeout_s: float | None = None, path: bytes = METHOD) -> bytes:
    """The request's header block: :method POST and :scheme http from the static table, the rest as literals
    without indexing (no HPACK table is touched, so the same bytes are valid for every request). `timeout_s` is
    sent as grpc-timeout, as grpc clients send their deadline."""

    def literal(name: bytes, value: bytes) -> bytes:
        return b"\x00" + hpack_int(len(name), 7) + name + hpack_int(len(value), 7) + value

    fields = [(b":path", path), (b":authority", authority.encode()), (b"content-type", b"application/grpc"),
              (b"te", b"trailers"), (b"user-agent", b"ailab-loadgen-h2")]  # fmt: skip
    if timeout_s is not None:
        fields.append((b"grpc-timeout", grpc_timeout(timeout_s)))
    return b"\x83\x86" + b"".join(literal(n, v) for n, v in fields)


def grpc_message(message: bytes) -> bytes:
    """A length-prefixed gRPC message (not compressed)."""
    return b"\x00" + _U32.pack(len(message)) + message


class GrpcStatusError(Exception):
    """A call that ended with grpc-status other than 0."""

    def __init__(self, code: int, message: str) -> None:
        self.code, self.message = code, message
        super().__init__(f"grpc-status {code}: {message}")


class RefusedError(ConnectionError):
    """A stream the server never processed (GOAWAY above its last stream id, or REFUSED_STREAM): safe to retry."""


class _Stream:
    __slots__ = ("block", "body", "grpc_message", "grpc_status", "out", "sid", "waiter", "window")

    def __init__(self, sid: int, out: bytes, window: int, waiter: asyncio.Future[bytes], block: bytes) -> None:
        self.sid, self.out, self.window, self.waiter, self.block = sid, out, window, waiter, block
        self.body = bytearray()
        self.grpc_status: int | None = None
        self.grpc_message = ""


class H2Connection(asyncio.Protocol):
    """One HTTP/2 connection carrying unary gRPC calls as streams (see the module docstring)."""

    def __init__(self, block: bytes) -> None:
        import hpack

        self.block = block
        self.decoder = hpack.Decoder()
        self.cache: dict[bytes, tuple[int, list[tuple[bytes, bytes]]]] = {}
        self.table_gen = 0  # bumped whenever a decoded block may have changed the dynamic table
        self.transport: asyncio.Transport | None = None
        self.buf = bytearray()
        self.streams: dict[int, _Stream] = {}
        self.blocked: deque[_Stream] = deque()  # opened, data waiting for a send window
        self.queued: deque[_Stream] = deque()  # not opened yet: the server's concurrent-stream limit
        self.next_sid = 1
        self.send_window, self.initial_window, self.max_frame = DEFAULT_WINDOW, DEFAULT_WINDOW, 16384
        self.max_streams = MAX_WINDOW
        self.received = 0
        self.cont: tuple[int, int, bytearray] | None = None  # (stream, flags, block) of a header block in pieces
        self.broken: BaseException | None = None
        self.goaway = False
        self.waited = 0  # streams whose data did not fit the windows or one frame at once (sent in pieces)

    # -- sending
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        settings = struct.pack(">HIHI", S_ENABLE_PUSH, 0, S_INITIAL_WINDOW_SIZE, MAX_WINDOW)
        self.transport.write(
            PREFACE
            + frame(SETTINGS, 0, 0, settings)
            + frame(WINDOW_UPDATE, 0, 0, _U32.pack(MAX_WINDOW - DEFAULT_WINDOW))
        )

    def usable(self) -> bool:
        return self.broken is None and not self.goaway and self.next_sid < MAX_WINDOW

    def submit(self, message: bytes, block: bytes | None = None) -> tuple[int, asyncio.Future[bytes]]:
        """Open a stream for one call (or queue it behind the server's stream limit); (stream id, its result).
        `block`: the request's header block (default: the connection's)."""
        sid, self.next_sid = self.next_sid, self.next_sid + 2
        waiter: asyncio.Future[bytes] = asyncio.get_running_loop().create_future()
        st = _Stream(sid, message, self.initial_window, waiter, block or self.block)
        if len(self.streams) >= self.max_streams:
            self.queued.append(st)
        else:
            self._open(st)
        return sid, waiter

    def _open(self, st: _Stream) -> None:
        self.streams[st.sid] = st
        head = frame(HEADERS, END_HEADERS, st.sid, st.block)
        n = len(st.out)
        if n <= self.max_frame and n <= self.send_window and n <= st.window:  # the usual case: one write
            self.send_window -= n
            st.window -= n
            self.transport.write(head + frame(DATA, END_STREAM, st.sid, st.out))  # type: ignore[union-attr]
            st.out = b""
            return
        self.transport.write(head)  # type: ignore[union-attr]
        self.blocked.append(st)
        self.waited += 1
        self._flush()

    def _flush(self) -> None:
        """Send what the windows allow of the blocked streams' data, in order."""
        while self.blocked and self.send_window > 0:
            st = self.blocked[0]
            if st.sid not in self.streams:  # cancelled meanwhile
                self.blocked.popleft()
                continue
            n = min(len(st.out), self.max_frame, self.send_window, st.window)
            if n <= 0:
                return
            chunk, st.out = st.out[:n], st.out[n:]
            self.send_window -= n
            st.window -= n
            self.transport.write(frame(DATA, 0 if st.out else END_STREAM, st.sid, chunk))  # type: ignore[union-attr]
            if not st.out:
                self.blocked.popleft()

    def cancel(self, sid: int, exc: BaseException) -> None:
        """Fail the stream with `exc` and tell the server to stop it (RST_STREAM CANCEL)."""
        st = self.streams.pop(sid, None)
        if st is None:
            self.queued = deque(q for q in self.queued if q.sid != sid)
            return
        if self.transport is not None and self.broken is None:
            self.transport.write(frame(RST_STREAM, 0, sid, _U32.pack(CANCEL)))
        if not st.waiter.done():
            st.waiter.set_exception(exc)
        self._next()

    def _next(self) -> None:
        while self.queued and len(self.streams) < self.max_streams and self.broken is None:
            self._open(self.queued.popleft())

    # -- receiving
    def data_received(self, data: bytes) -> None:
        buf = self.buf
        buf += data
        pos, size = 0, len(buf)
        while size - pos >= 9:
            lt, flags, sid = _FH.unpack_from(buf, pos)
            end = pos + 9 + (lt >> 8)
            if end > size:
                break
            payload = bytes(buf[pos + 9 : end])
            pos = end
            try:
                self._frame(lt & 0xFF, flags, sid & MAX_WINDOW, payload)
            except Exception as exc:  # noqa: BLE001 - a frame we cannot read breaks the connection, not the loop
                self._fail_all(ConnectionError(f"HTTP/2 connection unusable: {exc!r}"))
                if self.transport is not None:
                    self.transport.abort()
                return
        del buf[:pos]

    def _frame(self, ftype: int, flags: int, sid: int, payload: bytes) -> None:
        if ftype == DATA:
            self.received += len(payload)
            if self.received >= TOPUP_BYTES:
                self.transport.write(frame(WINDOW_UPDATE, 0, 0, _U32.pack(self.received)))  # type: ignore[union-attr]
                self.received = 0
            st = self.streams.get(sid)
            if st is not None:
                st.body += _unpad(payload, flags) if flags & PADDED else payload
                if flags & END_STREAM:
                    self._finish(st)
        elif ftype == HEADERS:
            if flags & PADDED:
                payload = _unpad(payload, flags)
            if flags & PRIORITY_FLAG:
                payload = payload[5:]
            if flags & END_HEADERS:
                self._headers(sid, flags, payload)
            else:
                self.cont = (sid, flags, bytearray(payload))
        elif ftype == CONTINUATION:
            if self.cont is None or self.cont[0] != sid:
                raise ValueError(f"CONTINUATION on stream {sid} without its HEADERS")
            self.cont[2].extend(payload)
            if flags & END_HEADERS:
                csid, cflags, block = self.cont
                self.cont = None
                self._headers(csid, cflags, bytes(block))
        elif ftype == RST_STREAM:
            st = self.streams.pop(sid, None)
            if st is not None and not st.waiter.done():
                code = _U32.unpack(payload[:4])[0]
                cls = RefusedError if code == REFUSED_STREAM else ConnectionError
                st.waiter.set_exception(cls(f"stream reset by the server (HTTP/2 error code {code})"))
                self._next()
        elif ftype == SETTINGS:
            if not flags & ACK:
                self._settings(payload)
                self.transport.write(frame(SETTINGS, ACK, 0))  # type: ignore[union-attr]
        elif ftype == PING:
            if not flags & ACK:
                self.transport.write(frame(PING, ACK, 0, payload))  # type: ignore[union-attr]
        elif ftype == WINDOW_UPDATE:
            inc = _U32.unpack(payload[:4])[0] & MAX_WINDOW
            if sid == 0:
                self.send_window += inc
            elif sid in self.streams:
                self.streams[sid].window += inc
            self._flush()
        elif ftype == GOAWAY:
            last, code = struct.unpack(">II", payload[:8])
            last &= MAX_WINDOW
            self.goaway = True
            for s in [s for s in self.streams if s > last]:
                st = self.streams.pop(s)
                if not st.waiter.done():
                    st.waiter.set_exception(RefusedError(f"GOAWAY (error code {code}): stream {s} was not processed"))
            for st in self.queued:
                if not st.waiter.done():
                    st.waiter.set_exception(RefusedError(f"GOAWAY (error code {code}): not sent"))
            self.queued.clear()
        # PRIORITY, PUSH_PROMISE (push is off) and unknown frame types carry nothing for us

    def _headers(self, sid: int, flags: int, block: bytes) -> None:
        fields = self._decode(block)
        st = self.streams.get(sid)
        if st is None:
            return
        for name, value in fields:
            if name == b"grpc-status":
                st.grpc_status = int(value)
            elif name == b"grpc-message":
                from urllib.parse import unquote

                st.grpc_message = unquote(value.decode(errors="replace"))
        if flags & END_STREAM:
            self._finish(st)

    def _decode(self, block: bytes) -> list[tuple[bytes, bytes]]:
        """The block's fields; decoded by hpack (in order: its dynamic table follows the server's), or from the cache
        when every field is a one-byte index and the table has not changed since the same bytes were decoded."""
        indexed_only = bool(block) and min(block) >= 0x80 and 0xFF not in block
        if indexed_only:
            hit = self.cache.get(block)
            if hit is not None and hit[0] == self.table_gen:
                return hit[1]
        fields = self.decoder.decode(block, raw=True)
        if indexed_only:
            self.cache[block] = (self.table_gen, fields)
        else:
            self.table_gen += 1
        return fields

    def _settings(self, payload: bytes) -> None:
        for at in range(0, len(payload) - 5, 6):
            key, value = struct.unpack_from(">HI", payload, at)
            if key == S_INITIAL_WINDOW_SIZE:
                delta, self.initial_window = value - self.initial_window, value
                for st in self.streams.values():
                    st.window += delta
            elif key == S_MAX_FRAME_SIZE:
                self.max_frame = value
            elif key == S_MAX_CONCURRENT_STREAMS:
                self.max_streams = value
            elif key == S_HEADER_TABLE_SIZE:
                pass  # the limit of the server's decoder table: our request block uses no table
        self._flush()
        self._next()

    def _finish(self, st: _Stream) -> None:
        self.streams.pop(st.sid, None)
        if not st.waiter.done():
            if st.grpc_status == 0:
                st.waiter.set_result(bytes(st.body[5:]))
            elif st.grpc_status is None:
                st.waiter.set_exception(ConnectionError(f"stream {st.sid} ended without grpc-status"))
            else:
                st.waiter.set_exception(GrpcStatusError(st.grpc_status, st.grpc_message))
        self._next()

    def _fail_all(self, exc: BaseException) -> None:
        self.broken = exc
        for st in list(self.streams.values()) + list(self.queued):
            if not st.waiter.done():
                st.waiter.set_exception(exc)
        self.streams.clear()
        self.queued.clear()
        self.blocked.clear()

    def connection_lost(self, exc: Exception | None) -> None:
        self._fail_all(exc or ConnectionResetError("server closed the connection"))


def _unpad(payload: bytes, flags: int) -> bytes:
    pad = payload[0]
    return payload[1 : len(payload) - pad]


class GrpcH2LoadClient:
    """Pre-serialised ModelInfer calls over one raw HTTP/2 connection (asyncio); see the module docstring."""

    def __init__(self, url: str, timeout_s: float = 10.0, retries: int = 0, backoff_s: float = 0.05) -> None:
        from workloads.serving.fastclient import host_port

        self.url, self.host, self.port = host_port(url)
        self.server = f"grpc://{self.url}"
        self.retries, self.backoff_s = retries, backoff_s
        self.timeout_s = timeout_s  # also builds the header block, which carries it as grpc-timeout
        self._conn: H2Connection | None = None
        self._old: list[H2Connection] = []  # after GOAWAY: finishing their streams, closed with the client
        self._lock: asyncio.Lock | None = None

    @property
    def timeout_s(self) -> float:
        return self._timeout_s

    @timeout_s.setter
    def timeout_s(self, seconds: float) -> None:
        """A new timeout applies to the next call, here and as the grpc-timeout it sends."""
        self._timeout_s = seconds
        self.block = header_block(self.url, seconds)

    def prepare(self, inputs: dict[str, np.ndarray], model: str = "", version: str = "", priority: int = 0) -> bytes:
        """The length-prefixed serialised ModelInferRequest, built once (pass it to infer)."""
        from workloads.serving.fastclient import grpc_request

        return grpc_message(grpc_request(inputs, model, version, priority))

    async def _connection(self, model: str) -> H2Connection:
        c = self._conn
        if c is not None and c.usable():
            return c
        if self._lock is None:
            self._lock = asyncio.Lock()
        async with self._lock:
            c = self._conn
            if c is not None and c.usable():
                return c
            if c is not None:
                (self._old.append if c.broken is None else _abort)(c)
                self._conn = None
            loop = asyncio.get_running_loop()
            _, c = await asyncio.wait_for(
                loop.create_connection(lambda: H2Connection(self.block), self.host, self.port),
                timeout=self.timeout_s,
            )
            self._conn = c
            return c

    async def infer_full(self, model: str, request: bytes) -> bytes:
        """Send one prepared request; the serialised ModelInferResponse. Raises InferenceError."""
        loop = asyncio.get_running_loop()
        for attempt in range(self.retries + 1):
            last = attempt == self.retries
            try:
                conn = await self._connection(model)
            except ConnectionRefusedError as exc:  # the handshake failed: nothing was sent
                if last:
                    raise InferenceError("connection", model, "", self.server, str(exc)) from exc
                await asyncio.sleep(self.backoff_s * 2**attempt)
                continue
            except (TimeoutError, OSError) as exc:
                kind = "timeout" if isinstance(exc, TimeoutError) else "connection"
                raise InferenceError(kind, model, "", self.server, str(exc) or type(exc).__name__) from exc
            sid, waiter = conn.submit(request, self.block)
            timer = loop.call_later(
                self.timeout_s, conn.cancel, sid, TimeoutError(f"no response in {self.timeout_s:g} s")
            )
            try:
                return await waiter
            except GrpcStatusError as exc:
                kind = (
                    "timeout"
                    if exc.code in _TIMEOUT_CODES
                    else "connection"
                    if exc.code in _CONNECTION_CODES
                    else "server"
                )
                raise InferenceError(kind, model, "", self.server, str(exc)) from exc
            except RefusedError as exc:  # the server never processed it
                if last:
                    raise InferenceError("connection", model, "", self.server, str(exc)) from exc
                await asyncio.sleep(self.backoff_s * 2**attempt)
            except TimeoutError as exc:
                raise InferenceError("timeout", model, "", self.server, str(exc)) from exc
            except (ConnectionError, OSError) as exc:
                raise InferenceError("connection", model, "", self.server, repr(exc)) from exc
            finally:
                timer.cancel()
        raise AssertionError("unreachable")

    async def infer(self, model: str, request: bytes) -> None:
        """Send one prepared request and wait for a successful response (the load generator's call)."""
        await self.infer_full(model, request)

    async def close(self) -> None:
        for c in [*self._old, *([self._conn] if self._conn else [])]:
            _abort(c)
        self._old.clear()
        self._conn = None


def _abort(c: H2Connection) -> None:
    if c.transport is not None:
        c.transport.abort()
