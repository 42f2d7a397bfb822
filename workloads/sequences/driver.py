"""Conversations as load: N concurrent sequences of `length` steps, each step a request, closed loop.

Every request of a conversation waits for the previous one (a sequence is ordered); conversations run concurrently.
`stateful` sends X with the conversation's correlation id and START/END flags (the server keeps the state);
`stateless` sends X and the H it got back from the previous step (the client keeps the state). Every output is
compared with the onnxruntime reference of the same conversation, so a wrong state (a lost, reset or mixed-up
sequence) shows as a mismatch. Latencies of the measured window are all kept: percentiles are exact (nearest rank).
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from dataclasses import dataclass, field

import numpy as np
import psutil

from workloads.sequences import gru
from workloads.serving.stats import percentile

POOL = 64  # distinct conversation inputs (seeded); conversation k uses pool entry k % POOL


@dataclass
class ConvResult:
    model: str
    mode: str
    concurrency: int
    length: int
    window_s: float = 0.0
    steps_ok: int = 0
    conversations_done: int = 0  # conversations whose every step succeeded and matched, ended in the window
    errors: Counter = field(default_factory=Counter)
    examples: dict[str, str] = field(default_factory=dict)
    mismatches: int = 0  # steps whose Y differs from the reference (or whose STEP count is wrong)
    latencies_ms: list[float] = field(default_factory=list)
    conversation_ms: list[float] = field(default_factory=list)  # whole conversations ended in the window
    host_cpu_busy: float = 0.0  # whole machine: fraction of all cores busy over the run (0..1)

    def pct(self, p: float, which: str = "step") -> float:
        data = self.latencies_ms if which == "step" else self.conversation_ms
        return percentile(np.sort(np.asarray(data)), p)

    @property
    def steps_per_s(self) -> float:
        return self.steps_ok / self.window_s if self.window_s else 0.0


class Pool:
    """Conversation inputs and their reference outputs, computed once."""

    def __init__(self, length: int, ref: gru.Reference) -> None:
        self.xs = [gru.conversation(1000 + k, length) for k in range(POOL)]
        self.ys = [ref.run(x) for x in self.xs]


def _inputs(mod, arrays: dict[str, np.ndarray]) -> list:
    out = []
    for name, a in arrays.items():
        i = mod.InferInput(name, list(a.shape), "FP32")
        i.set_data_from_numpy(a)
        out.append(i)
    return out


async def run(
    url: str,
    model: str,
    mode: str,
    concurrency: int,
    length: int,
    pool: Pool,
    duration_s: float = 3.0,
    warmup_s: float = 0.5,
    first_id: int = 1,
    timeout_s: float = 30.0,
) -> ConvResult:
    """Closed loop of `concurrency` conversations over gRPC for warmup_s + duration_s (conversations in flight at the
    end finish, uncounted)."""
    import tritonclient.grpc as grpcclient
    import tritonclient.grpc.aio as grpcaio

    if mode not in ("stateful", "stateless"):
        raise ValueError(f"mode {mode!r}: allowed stateful, stateless")
    res = ConvResult(model, mode, concurrency, length)
    client = grpcaio.InferenceServerClient(url)
    t0 = time.perf_counter()
    start, end = t0 + warmup_s, t0 + warmup_s + duration_s
    ids = iter(range(first_id, first_id + 10**9))

    def err(kind: str, msg: str, counted: bool) -> None:
        if counted:
            res.errors[kind] += 1
        res.examples.setdefault(kind, msg[:300])

    async def conversation(cid: int) -> None:
        k = cid % POOL
        xs, want = pool.xs[k], pool.ys[k]
        h = np.zeros((1, gru.HIDDEN), np.float32)
        c0 = time.perf_counter()
        ok = True
        for s in range(length):
            arrays = {"X": xs[s : s + 1]} if mode == "stateful" else {"X": xs[s : s + 1], "H_IN": h}
            kw = {"sequence_id": cid, "sequence_start": s == 0, "sequence_end": s == length - 1}
            t = time.perf_counter()
            counted = start <= t < end
            try:
                r = await client.infer(
                    model,
                    _inputs(grpcclient, arrays),
                    client_timeout=timeout_s,
                    **(kw if mode == "stateful" else {}),
                )
            except Exception as exc:  # noqa: BLE001 - every failure is counted by kind and the conversation stops
                err(
                    "server" if "InferenceServerException" in type(exc).__name__ else type(exc).__name__,
                    str(exc),
                    counted,
                )
                return
            lat = (time.perf_counter() - t) * 1e3
            y = r.as_numpy("Y")
            good = y is not None and np.allclose(y[0], want[s], rtol=1e-4, atol=1e-5)
            if mode == "stateful":
                good = good and int(r.as_numpy("STEP").reshape(-1)[0]) == s + 1
            else:
                h = r.as_numpy("H_OUT")
            if counted:
                res.latencies_ms.append(lat)
                res.steps_ok += 1
                res.mismatches += 0 if good else 1
            ok = ok and good
        t_end = time.perf_counter()
        if ok and start <= t_end < end:
            res.conversations_done += 1
            if c0 >= start:
                res.conversation_ms.append((t_end - c0) * 1e3)

    async def worker() -> None:
        while time.perf_counter() < end:
            await conversation(next(ids))

    psutil.cpu_percent(None)
    try:
        await asyncio.gather(*(worker() for _ in range(concurrency)))
    finally:
        await client.close()
    res.window_s = duration_s
    res.host_cpu_busy = psutil.cpu_percent(None) / 100.0
    return res
