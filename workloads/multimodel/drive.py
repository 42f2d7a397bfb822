"""Several load streams at once (one per model or per priority), each the lab's load generator with exact
percentiles, started together so their measured windows coincide."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence

import numpy as np

from workloads.serving import harness, loadgen
from workloads.serving.stats import percentile

# Time from the call to the streams' common start: enough for each thread to open its client. Seen on this host
# during d60's quick run (rate-limited servers, up to 64 + 8 in flight): every thread was waiting for the start
# with at least 246 of 250 ms to spare, i.e. ready within 4 ms; the streams' own warm-ups follow the start.
LEAD_S = 0.1


def together(
    streams: Sequence[loadgen.LoadSpec],
    lead_s: float = LEAD_S,
    run: Callable[[loadgen.LoadSpec], loadgen.LoadResult] = loadgen.run,
) -> list[loadgen.LoadResult]:
    """Run every stream at the same time (one thread and event loop each, each sent by `run`: the generator's own
    client by default); results in the same order."""
    start = time.time() + lead_s
    out: list[loadgen.LoadResult | BaseException | None] = [None] * len(streams)

    def go(i: int, spec: loadgen.LoadSpec) -> None:
        try:
            out[i] = run(_with(spec, start))
        except BaseException as exc:  # noqa: BLE001 - re-raised below in the caller's thread
            out[i] = exc

    threads = [threading.Thread(target=go, args=(i, s), daemon=True) for i, s in enumerate(streams)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for r in out:
        if isinstance(r, BaseException):
            raise r
    return [r for r in out if isinstance(r, loadgen.LoadResult)]


def _with(spec: loadgen.LoadSpec, start: float) -> loadgen.LoadSpec:
    from dataclasses import replace

    return replace(spec, start_at=start)


def stream(served: harness.Served, model: str, **kw: object) -> loadgen.LoadSpec:
    """A gRPC load spec against `model` of `served`, with Triton's counters of that model read around it."""
    return loadgen.LoadSpec(url=served.address("grpc"), model=model, metrics_url=served.metrics_url, **kw)  # type: ignore[arg-type]


def jitter(samples_ms: Sequence[float]) -> dict[str, float]:
    """Spread of one stream's latencies, ms: p99 - p50, p99.9 - p50, standard deviation, interquartile range."""
    a = np.sort(np.asarray(samples_ms, dtype=np.float64))
    if not len(a):
        return {"p99-p50": float("nan"), "p99.9-p50": float("nan"), "std": float("nan"), "iqr": float("nan")}
    p50 = percentile(a, 50)
    return {
        "p99-p50": percentile(a, 99) - p50,
        "p99.9-p50": percentile(a, 99.9) - p50,
        "std": float(a.std()),
        "iqr": percentile(a, 75) - percentile(a, 25),
    }


def jain(values: Sequence[float]) -> float:
    """Jain's fairness index of per-model shares: 1 = equal, 1/n = one model gets everything."""
    x = np.asarray(values, dtype=np.float64)
    return float(x.sum() ** 2 / (len(x) * (x**2).sum())) if len(x) and (x**2).sum() > 0 else float("nan")
