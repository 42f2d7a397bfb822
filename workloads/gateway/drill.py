"""Phased load against the gateway: a closed loop runs throughout while a controller changes HAProxy weights
at phase boundaries (runtime API); samples are attributed to the phase in which they were sent."""

from __future__ import annotations

import asyncio
import bisect
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from workloads.gateway import load, runtime
from workloads.gateway.stack import CANARY, version_server


@dataclass
class Phase:
    name: str
    weights: dict[int, int]  # version -> HAProxy weight
    seconds: float


@dataclass
class Boundary:
    phase: str
    t_s: float  # when the weight change was sent, s from the run's start
    apply_ms: float  # how long the runtime API took


@dataclass
class PhaseStats:
    """What the clients saw in one phase: per-server answers and latencies."""

    requests: int = 0
    failed: int = 0  # any answer other than 200, or no answer
    by_server: Counter[str] = field(default_factory=Counter)  # 200s per answering server (X-Served-By)
    by_version: Counter[str] = field(default_factory=Counter)  # 200s per model_version in the body
    mismatched: int = 0  # 200s whose model_version is not the server's version
    lat: dict[str, list[float]] = field(default_factory=dict)  # server -> latencies of its 200s, ms

    def share(self, server: str) -> float:
        """Share of successful answers from `server`, %."""
        total = sum(self.by_server.values())
        return 100.0 * self.by_server[server] / total if total else float("nan")


def stats(samples: list[load.Sample]) -> PhaseStats:
    st = PhaseStats()
    for s in samples:
        st.requests += 1
        if s.status != 200:
            st.failed += 1
            continue
        st.by_server[s.server] += 1
        st.by_version[s.version] += 1
        if s.server and s.server != f"v{s.version}":
            st.mismatched += 1
        st.lat.setdefault(s.server, []).append(s.latency_ms)
    return st


def split_by_phase(samples: list[load.Sample], bounds: list[Boundary]) -> list[list[load.Sample]]:
    """Samples per boundary (same order), by send time; phases may share a name (100:0 at start and end)."""
    out: list[list[load.Sample]] = [[] for _ in bounds]
    starts = [b.t_s for b in bounds]
    for s in samples:
        i = max(0, bisect.bisect_right(starts, s.t_s) - 1)
        out[i].append(s)
    return out


async def apply(sock: str, weights: dict[int, int]) -> float:
    """Set the canary backend's weights; returns the time the runtime API took, ms."""
    t = time.perf_counter()
    await runtime.set_weights(sock, CANARY, {version_server(v): w for v, w in weights.items()})
    return 1e3 * (time.perf_counter() - t)


async def run_phases(
    client: load.Client,
    sock: str,
    phases: list[Phase],
    concurrency: int,
    max_requests: int,
    on_sample: Callable[[load.Sample], None] | None = None,
    during: Callable[[Phase, float], Awaitable[None]] | None = None,
) -> tuple[load.Run, list[Boundary]]:
    """One closed loop over all phases; weights applied at each boundary (the first before load starts)."""
    bounds = [Boundary(phases[0].name, 0.0, await apply(sock, phases[0].weights))]
    stop = asyncio.Event()
    total = sum(p.seconds for p in phases)
    t0 = time.perf_counter()
    loop_task = asyncio.create_task(
        load.closed_loop(client, concurrency, max_requests, total + 30, stop=stop, on_sample=on_sample, t0=t0)
    )

    async def controller() -> None:
        for i, ph in enumerate(phases):
            if i > 0:
                at = time.perf_counter() - t0
                bounds.append(Boundary(ph.name, at, await apply(sock, ph.weights)))
            if during is not None:
                await during(ph, time.perf_counter() - t0)
            end = t0 + sum(p.seconds for p in phases[: i + 1])
            await asyncio.sleep(max(0.0, end - time.perf_counter()))
        stop.set()

    await asyncio.gather(controller(), loop_task)
    return loop_task.result(), bounds
