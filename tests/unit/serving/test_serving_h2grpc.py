"""The raw HTTP/2 gRPC client's protocol handling, frame by frame.

The peer here is scripted: these are the cases a live tritonserver does not produce on demand (a small window, a
padded or split header block, GOAWAY, RST_STREAM, a changed HPACK table). The live behaviour against the real
tritonserver 2.51 is in tests/integration/serving/test_serving_fastclient_live.py."""

from __future__ import annotations

import asyncio
import struct

import hpack
import pytest

from workloads.serving import h2grpc as h2


class Wire:
    """A transport that keeps what the client wrote, parsed back into frames."""

    def __init__(self) -> None:
        self.out = bytearray()
        self.aborted = False

    def write(self, data: bytes) -> None:
        self.out += data

    def abort(self) -> None:
        self.aborted = True

    def frames(self) -> list[tuple[int, int, int, bytes]]:
        buf = bytes(self.out)
        if buf.startswith(h2.PREFACE):
            buf = buf[len(h2.PREFACE) :]
        got, at = [], 0
        while at < len(buf):
            lt, flags, sid = h2._FH.unpack_from(buf, at)
            n = lt >> 8
            got.append((lt & 0xFF, flags, sid, buf[at + 9 : at + 9 + n]))
            at += 9 + n
        self.out.clear()
        return got


@pytest.fixture
def conn():
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    c = h2.H2Connection(h2.header_block("127.0.0.1:8001"))
    wire = Wire()
    c.connection_made(wire)  # type: ignore[arg-type]
    yield c, wire, loop
    loop.close()
    asyncio.set_event_loop(None)


def submit(c: h2.H2Connection, loop: asyncio.AbstractEventLoop, message: bytes):
    async def go():
        return c.submit(message)

    return loop.run_until_complete(go())


def respond(c: h2.H2Connection, enc: hpack.Encoder, sid: int, body: bytes, status: int = 0, msg: str = "") -> None:
    trailers = [("grpc-status", str(status))] + ([("grpc-message", msg)] if msg else [])
    c.data_received(
        h2.frame(
            h2.HEADERS, h2.END_HEADERS, sid, enc.encode([(":status", "200"), ("content-type", "application/grpc")])
        )
        + h2.frame(h2.DATA, 0, sid, h2.grpc_message(body))
        + h2.frame(h2.HEADERS, h2.END_HEADERS | h2.END_STREAM, sid, enc.encode(trailers))
    )


def test_hpack_integers_follow_rfc_7541_examples():
    assert h2.hpack_int(10, 5) == b"\x0a"
    assert h2.hpack_int(1337, 5) == b"\x1f\x9a\x0a"
    assert h2.hpack_int(42, 8) == b"\x2a"


def test_the_request_header_block_decodes_to_a_grpc_call_and_touches_no_table():
    d = hpack.Decoder()
    fields = d.decode(h2.header_block("127.0.0.1:8001"), raw=True)
    assert fields[:2] == [(b":method", b"POST"), (b":scheme", b"http")]
    assert (b":path", b"/inference.GRPCInferenceService/ModelInfer") in fields
    assert (b":authority", b"127.0.0.1:8001") in fields
    assert (b"content-type", b"application/grpc") in fields and (b"te", b"trailers") in fields
    assert len(d.header_table.dynamic_entries) == 0


def test_connection_opens_with_preface_settings_and_a_full_window(conn):
    _c, wire, _ = conn
    assert bytes(wire.out).startswith(h2.PREFACE)
    (settings, update) = wire.frames()
    assert settings[:3] == (h2.SETTINGS, 0, 0)
    assert dict(struct.iter_unpack(">HI", settings[3])) == {
        h2.S_ENABLE_PUSH: 0,
        h2.S_INITIAL_WINDOW_SIZE: h2.MAX_WINDOW,
    }
    assert update[:3] == (h2.WINDOW_UPDATE, 0, 0) and struct.unpack(">I", update[3])[0] == h2.MAX_WINDOW - 65535


def test_a_call_is_one_write_and_its_answer_the_message(conn):
    c, wire, loop = conn
    wire.frames()
    sid, waiter = submit(c, loop, h2.grpc_message(b"request"))
    (headers, data) = wire.frames()
    assert headers[:3] == (h2.HEADERS, h2.END_HEADERS, sid) and headers[3] == c.block
    assert data == (h2.DATA, h2.END_STREAM, sid, b"\x00\x00\x00\x00\x07request")
    respond(c, hpack.Encoder(), sid, b"response")
    assert waiter.result() == b"response" and not c.streams


def test_settings_are_acknowledged_and_pings_answered(conn):
    c, wire, _ = conn
    wire.frames()
    c.data_received(h2.frame(h2.SETTINGS, 0, 0, struct.pack(">HIHI", h2.S_MAX_FRAME_SIZE, 20000, 3, 7)))
    c.data_received(h2.frame(h2.PING, 0, 0, b"12345678") + h2.frame(h2.PING, h2.ACK, 0, b"87654321"))
    assert wire.frames() == [(h2.SETTINGS, h2.ACK, 0, b""), (h2.PING, h2.ACK, 0, b"12345678")]
    assert c.max_frame == 20000 and c.max_streams == 7


def test_data_waits_for_the_servers_window_and_is_split_into_frames(conn):
    c, wire, loop = conn
    c.data_received(h2.frame(h2.SETTINGS, 0, 0, struct.pack(">HI", h2.S_INITIAL_WINDOW_SIZE, 40000)))
    wire.frames()
    msg = h2.grpc_message(bytes(100_000))
    sid, waiter = submit(c, loop, msg)
    frames = wire.frames()
    assert frames[0][0] == h2.HEADERS
    sent = [f for f in frames[1:] if f[0] == h2.DATA]
    assert [len(f[3]) for f in sent] == [16384, 16384, 40000 - 32768]  # the stream's window, in 16 KiB frames
    assert all(f[1] == 0 for f in sent)  # not the end yet
    c.data_received(h2.frame(h2.WINDOW_UPDATE, 0, sid, struct.pack(">I", 100_000)))
    sent = wire.frames()
    assert sum(len(f[3]) for f in sent) == 65535 - 40000  # now the connection's window is the limit
    c.data_received(h2.frame(h2.WINDOW_UPDATE, 0, 0, struct.pack(">I", 100_000)))
    rest = wire.frames()
    assert rest[-1][1] == h2.END_STREAM
    got = b"".join(f[3] for f in frames[1:] + sent + rest if f[0] == h2.DATA)
    assert got == msg and c.waited == 1 and not waiter.done()


def test_a_header_block_split_padded_and_continued_is_decoded(conn):
    c, _wire, loop = conn
    sid, waiter = submit(c, loop, h2.grpc_message(b"x"))
    enc = hpack.Encoder()
    block = enc.encode([(":status", "200"), ("content-type", "application/grpc")])
    padded = bytes([3]) + block[:1] + b"\x00\x00\x00"
    c.data_received(
        h2.frame(h2.HEADERS, h2.PADDED, sid, padded) + h2.frame(h2.CONTINUATION, h2.END_HEADERS, sid, block[1:])
    )
    c.data_received(h2.frame(h2.DATA, h2.PADDED, sid, bytes([2]) + h2.grpc_message(b"ok") + b"\x00\x00"))
    c.data_received(h2.frame(h2.HEADERS, h2.END_HEADERS | h2.END_STREAM, sid, enc.encode([("grpc-status", "0")])))
    assert waiter.result() == b"ok"


def test_frames_arriving_in_pieces_are_reassembled(conn):
    c, _, loop = conn
    sid, waiter = submit(c, loop, h2.grpc_message(b"x"))
    enc = hpack.Encoder()
    wire_bytes = (
        h2.frame(h2.HEADERS, h2.END_HEADERS, sid, enc.encode([(":status", "200")]))
        + h2.frame(h2.DATA, 0, sid, h2.grpc_message(b"answer"))
        + h2.frame(h2.HEADERS, h2.END_HEADERS | h2.END_STREAM, sid, enc.encode([("grpc-status", "0")]))
    )
    for i in range(len(wire_bytes)):
        c.data_received(wire_bytes[i : i + 1])
    assert waiter.result() == b"answer"


def test_the_indexed_block_cache_follows_the_servers_table(conn):
    """The same one-byte index names another field once the server's table has changed: the cache must not answer
    for it. Here b"\\xbe" (dynamic entry 62) is first `grpc-status: 0`, then `grpc-status: 5`."""
    c, _, loop = conn
    enc = hpack.Encoder()
    answers = []
    for status in (0, 0, 5, 5):
        sid, w = submit(c, loop, h2.grpc_message(b"x"))
        respond(c, enc, sid, b"a", status=status)
        answers.append(w)
    assert answers[0].result() == answers[1].result() == b"a" and c.cache  # the 2nd trailers came from the cache
    for w in answers[2:]:
        with pytest.raises(h2.GrpcStatusError) as err:
            w.result()
        assert err.value.code == 5
    sid, w = submit(c, loop, h2.grpc_message(b"x"))
    respond(c, enc, sid, b"", status=5, msg="model%20not found")
    with pytest.raises(h2.GrpcStatusError, match="model not found"):  # grpc-message is percent-encoded
        w.result()


def test_a_stream_reset_or_beyond_goaway_fails_as_refused_and_others_finish(conn):
    c, _wire, loop = conn
    (s1, w1), (s2, w2), (_s3, w3) = (submit(c, loop, h2.grpc_message(b"x")) for _ in range(3))
    c.data_received(h2.frame(h2.RST_STREAM, 0, s1, struct.pack(">I", h2.REFUSED_STREAM)))
    c.data_received(h2.frame(h2.GOAWAY, 0, 0, struct.pack(">II", s2, 0)))
    with pytest.raises(h2.RefusedError):
        w1.result()
    with pytest.raises(h2.RefusedError, match="GOAWAY"):
        w3.result()
    assert not c.usable() and not w2.done()
    respond(c, hpack.Encoder(), s2, b"done")
    assert w2.result() == b"done"


def test_cancel_resets_the_stream_and_late_frames_still_keep_the_table(conn):
    c, wire, loop = conn
    sid, waiter = submit(c, loop, h2.grpc_message(b"x"))
    wire.frames()
    c.cancel(sid, TimeoutError("no response in 1 s"))
    assert wire.frames() == [(h2.RST_STREAM, 0, sid, struct.pack(">I", h2.CANCEL))]
    with pytest.raises(TimeoutError):
        waiter.result()
    enc = hpack.Encoder()
    respond(c, enc, sid, b"late")  # its headers still pass through the decoder
    s2, w2 = submit(c, loop, h2.grpc_message(b"x"))
    respond(c, enc, s2, b"next")
    assert w2.result() == b"next"


def test_the_servers_stream_limit_queues_new_calls(conn):
    c, _wire, loop = conn
    c.data_received(h2.frame(h2.SETTINGS, 0, 0, struct.pack(">HI", h2.S_MAX_CONCURRENT_STREAMS, 1)))
    (s1, w1), (s2, _w2) = (submit(c, loop, h2.grpc_message(b"x")) for _ in range(2))
    assert list(c.streams) == [s1] and [q.sid for q in c.queued] == [s2]
    respond(c, hpack.Encoder(), s1, b"one")
    assert w1.result() == b"one" and list(c.streams) == [s2] and not c.queued


def test_a_broken_frame_fails_every_call_and_aborts(conn):
    c, wire, loop = conn
    sid, waiter = submit(c, loop, h2.grpc_message(b"x"))
    c.data_received(h2.frame(h2.CONTINUATION, h2.END_HEADERS, sid, b"\x88"))  # no HEADERS before it
    assert wire.aborted and c.broken is not None
    with pytest.raises(ConnectionError, match="CONTINUATION"):
        waiter.result()


def test_connection_window_is_given_back_after_a_mebibyte(conn):
    c, wire, loop = conn
    sid, _ = submit(c, loop, h2.grpc_message(b"x"))
    wire.frames()
    chunk = h2.frame(h2.DATA, 0, sid, bytes(16384))
    c.data_received(chunk * 64)
    assert wire.frames() == [(h2.WINDOW_UPDATE, 0, 0, struct.pack(">I", 1 << 20))]


def test_the_clients_timeout_goes_out_as_grpc_timeout():
    assert h2.grpc_timeout(10) == b"10000m" and h2.grpc_timeout(0.0001) == b"1m"
    assert h2.grpc_timeout(10**6) == b"1000000S"  # 10^9 ms would not fit 8 digits
    fields = dict(hpack.Decoder().decode(h2.header_block("127.0.0.1:8001", 2.5), raw=True))
    assert fields[b"grpc-timeout"] == b"2500m"
    assert b"grpc-timeout" not in dict(hpack.Decoder().decode(h2.header_block("127.0.0.1:8001"), raw=True))
