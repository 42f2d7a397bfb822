"""Canary rollout pieces for d05.e5: a weighted client-side traffic split and the health gate (the parameters are
the runner's CanaryParams, workloads/serving/experiments/canary.py)."""

from __future__ import annotations

import asyncio
import math
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from workloads.serving import loadgen
from workloads.serving.client import AsyncClient, InferenceError

if TYPE_CHECKING:
    from workloads.serving.experiments.canary import CanaryParams


@dataclass
class VersionStats:
    """Requests sent to one version in one phase."""

    lat_ms: list[float] = field(default_factory=list)  # successful requests
    failed: int = 0
    bad_outputs: int = 0  # answered, but NaN/Inf or the wrong size
    served: Counter[int] = field(default_factory=Counter)  # model_version the responses name -> count

    @property
    def n(self) -> int:
        return len(self.lat_ms) + self.failed

    def pct(self, p: float) -> float:
        return loadgen.percentile(np.sort(np.asarray(self.lat_ms)), p)


class Traffic:
    """Closed-loop senders that pick a version per request by weight and record each result under the current phase."""

    def __init__(self, s: CanaryParams, url: str, model: str, x: np.ndarray) -> None:
        self.s, self.url, self.model, self.x = s, url, model, x
        self.weights: dict[int, int] = {}
        self.started = asyncio.Event()
        self.stop = asyncio.Event()
        self.flowing = asyncio.Event()  # cleared to hold new requests while the server's counters are read
        self.flowing.set()
        self.in_flight = 0
        self._phase = "start"
        self.phase_weights: dict[str, dict[int, int]] = {}
        self.records: dict[tuple[str, int], VersionStats] = {}
        self.order: list[str] = []
        self.rng = np.random.default_rng(s.seed)

    @property
    def phase(self) -> str:
        return self._phase

    @phase.setter
    def phase(self, name: str) -> None:
        self._phase = name
        self.phase_weights.setdefault(name, dict(self.weights))

    def pick(self) -> int:
        vs = list(self.weights)
        w = np.asarray([self.weights[v] for v in vs], dtype=float)
        return int(vs[int(self.rng.choice(len(vs), p=w / w.sum()))])

    async def run(self) -> None:
        client = AsyncClient(self.url, "grpc", timeout_s=30, retries=0)
        reqs: dict[int, Any] = {}
        try:
            await self.started.wait()

            async def worker() -> None:
                while not self.stop.is_set():
                    await self.flowing.wait()
                    v = self.pick()
                    req = reqs.setdefault(v, client.prepare({"input": self.x}, self.model, str(v)))
                    await self.one(client, v, req)

            await asyncio.gather(*[worker() for _ in range(self.s.concurrency)])
        finally:
            await client.close()

    async def one(self, client: AsyncClient, v: int, req: Any) -> None:
        phase = self._phase
        if phase not in self.order:
            self.order.append(phase)
        st = self.records.setdefault((phase, v), VersionStats())
        t0 = time.perf_counter()
        self.in_flight += 1
        try:
            resp = await client.infer(self.model, req)
        except InferenceError:
            st.failed += 1
            await asyncio.sleep(0.001)  # a failing version must not turn the loop into a busy spin
            return
        finally:
            self.in_flight -= 1
        st.lat_ms.append((time.perf_counter() - t0) * 1e3)
        st.served[int(resp.model_version or 0)] += 1
        out = np.frombuffer(resp.raw_output_contents[0], dtype=np.float32)
        st.bad_outputs += int(out.size != 10 * len(self.x) or not np.isfinite(out).all())

    async def quiesce(self) -> None:
        """Hold new requests and wait for those in flight: server counters read now bracket a phase exactly."""
        self.flowing.clear()
        while self.in_flight:
            await asyncio.sleep(0.001)

    def resume(self) -> None:
        self.flowing.set()

    def stats(self, phase: str, v: int) -> VersionStats:
        return self.records.get((phase, v), VersionStats())

    def phase_order(self) -> list[str]:
        """Phases in the order they began; gap traffic (labels starting with '(') last, as one row per version."""
        return [p for p in self.order if not p.startswith("(")] + [p for p in self.order if p.startswith("(")]

    def versions_in(self, phase: str) -> set[int]:
        return {v for (p, v) in self.records if p == phase}

    def serving_at(self, phase: str) -> set[int]:
        """The versions that carried traffic by weight when the phase began."""
        return {v for v, w in self.phase_weights.get(phase, {}).items() if w > 0}


@dataclass
class Gate:
    canary: int
    stable: int
    decision: str  # promote | rollback
    reasons: list[str]
    load_failed: bool = False
    error_rate: float = 0.0
    p99_ms: float = math.nan
    p99_limit_ms: float = math.nan
    output_check: str = "-"


def gate(
    s: CanaryParams,
    stable: VersionStats,
    canary: VersionStats,
    ref: np.ndarray | None,
    out: np.ndarray | None,
    version: int,
    stable_version: int,
) -> Gate:
    """Promote the canary only if its errors, p99, outputs and reported version all pass; otherwise roll back."""
    why: list[str] = []
    err = canary.failed / canary.n if canary.n else 1.0
    if canary.n == 0:
        why.append("no canary request completed")
    elif err > s.max_error_rate:
        why.append(f"error rate {100 * err:.2f} % > {100 * s.max_error_rate:g} %")
    p99, limit = canary.pct(99), s.max_p99_ratio * stable.pct(99) + s.p99_slack_ms
    if canary.lat_ms and p99 > limit:
        why.append(f"p99 {p99:.2f} ms > {limit:.2f} ms")
    if canary.bad_outputs:
        why.append(f"{canary.bad_outputs} live responses NaN/Inf or mis-shaped")
    if set(canary.served) - {version}:
        why.append(f"responses named versions {sorted(canary.served)}, asked for {version}")
    check = "no output"
    if out is None or ref is None:
        why.append("probe request failed")
    elif out.shape != ref.shape:
        check = f"shape {list(out.shape)}"
        why.append(f"output shape {list(out.shape)} != {list(ref.shape)}")
    elif not np.isfinite(out).all():
        check = f"{int((~np.isfinite(out)).sum())} of {out.size} values NaN/Inf"
        why.append("non-finite outputs")
    else:
        agree = float((out.argmax(1) == ref.argmax(1)).mean())
        check = (
            f"finite, shape {list(out.shape)}, top-1 agreement with v{stable_version} {100 * agree:.1f} %, "
            f"max |logit diff| {float(np.abs(out - ref).max()):.3f}"
        )
        if agree < s.min_agreement:
            why.append(f"top-1 agreement {100 * agree:.1f} % < {100 * s.min_agreement:g} %")
    return Gate(
        version,
        stable_version,
        "rollback" if why else "promote",
        why,
        error_rate=err,
        p99_ms=p99,
        p99_limit_ms=limit,
        output_check=check,
    )
