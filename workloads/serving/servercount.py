"""What the server itself counted while a load driver ran: Triton's per-model counters (metrics.py) turned into the
server-counted throughput and mean server-side latency, to set beside each driver's own numbers.

Two ways of reading them, one per kind of driver:
- `from_window`: the lab generator already reads the counters at the start and the end of its measured window
  (loadgen.py), so its delta is exact up to the requests in flight at the window's edges.
- `Sampler`: perf_analyzer's measurement windows are inside its process, so a thread scrapes the metrics page every
  `period_s` while it runs; `steady` keeps only the samples taken while its load was on (between the first reading
  that saw its requests and the last one before they stopped), so neither its start-up nor its exit is counted.
Both give a `ServerCount`. Triton increments these counters when each request completes (not on the metrics
polling interval, which only applies to GPU/CPU utilisation gauges)."""

from __future__ import annotations

import math
import threading
import time
from dataclasses import dataclass
from types import TracebackType

from workloads.serving import metrics


@dataclass(frozen=True)
class ServerCount:
    """Requests Triton counted over `seconds`, their rate (req/s) and mean server-side times per request (µs)."""

    requests: float
    seconds: float
    request_us: float  # nv_inference_request_duration_us per request: receipt to response sent, inside the server
    queue_us: float
    compute_infer_us: float
    method: str  # how the window was taken ("driver's window" or "sampled every 0.1 s")

    @property
    def throughput_rps(self) -> float:
        return self.requests / self.seconds if self.seconds > 0 else math.nan


def from_delta(d: metrics.ModelCounters, seconds: float, method: str) -> ServerCount:
    """A ServerCount from a difference of two readings taken `seconds` apart."""
    return ServerCount(
        requests=d.request_success,
        seconds=seconds,
        request_us=d.per_request_us("request_us") if d.request_success else math.nan,
        queue_us=d.per_request_us("queue_us") if d.request_success else math.nan,
        compute_infer_us=d.per_request_us("compute_infer_us") if d.request_success else math.nan,
        method=method,
    )


def from_window(server: dict[str, float], seconds: float) -> ServerCount | None:
    """The lab generator's own before/after reading (LoadResult.server, with loadgen.server_summary's keys)."""
    if not server or "requests" not in server:
        return None
    return ServerCount(
        requests=server["requests"],
        seconds=seconds,
        request_us=server.get("request_us", math.nan),
        queue_us=server.get("queue_us", math.nan),
        compute_infer_us=server.get("compute_infer_us", math.nan),
        method="the driver's measured window",
    )


def steady(
    samples: list[tuple[float, metrics.ModelCounters]], method: str = "sampled", last_s: float | None = None
) -> ServerCount | None:
    """The counts between the first and the last sample taken while load was on (None: too few such samples).

    samples: (time s, cumulative counters), in time order. Load was on from just before the first sample whose
    success count moved off the first reading's, to just after the last sample below the final count; the
    samples strictly inside that span were all taken under load, so the span between the first and last of
    them counts full load only. last_s: keep only about the last `last_s` seconds of that span (the driver's
    own measured windows, when they are its last ones), never less than two readings."""
    if len(samples) < 2:
        return None
    counts = [c.request_success for _, c in samples]
    base, final = counts[0], counts[-1]
    if final <= base:
        return None
    i0 = max(i for i, n in enumerate(counts) if n == base)  # the last reading before any request completed
    i1 = min(i for i, n in enumerate(counts) if n == final)  # the first reading after the last one completed
    a, b = i0 + 1, i1 - 1
    if b <= a:
        return None
    if last_s is not None and last_s > 0:
        tb = samples[b][0]
        a = max([a, *(i for i in range(a, b) if samples[i][0] <= tb - last_s)])
    (ta, ca), (tb, cb) = samples[a], samples[b]
    return from_delta(cb - ca, tb - ta, method)


class Sampler:
    """A thread reading `model`'s counters from `metrics_url` every `period_s` while the with-block runs.

    Only the page text is kept while sampling (parsing it then would take CPU from the load being measured); the
    pages are parsed afterwards by `count()`."""

    def __init__(self, metrics_url: str, model: str, period_s: float = 0.1) -> None:
        if not 0.01 <= period_s <= 5.0:
            raise ValueError(f"period_s {period_s}: allowed 0.01..5 s")
        self.url, self.model, self.period_s = metrics_url, model, period_s
        self.pages: list[tuple[float, str]] = []
        self.errors: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="servercount", daemon=True)

    def _read(self) -> None:
        t0 = time.perf_counter()
        try:
            text = metrics.scrape(self.url, timeout=max(1.0, 5 * self.period_s))
        except OSError as exc:  # one missed reading loses only resolution; every one missed is reported by count()
            self.errors.append(repr(exc))
            return
        self.pages.append(((t0 + time.perf_counter()) / 2, text))

    def _loop(self) -> None:
        while not self._stop.wait(self.period_s):
            self._read()

    def __enter__(self) -> Sampler:
        self._read()
        self._thread.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._stop.set()
        self._thread.join()
        self._read()

    def count(self, last_s: float | None = None) -> ServerCount | None:
        """The steady load's ServerCount from the pages read (None when there were too few under load); last_s:
        only about the load's last seconds (see `steady`)."""
        samples = [(t, metrics.parse(text, self.model)) for t, text in self.pages]
        return steady(samples, f"sampled every {self.period_s:g} s while the driver's load was on", last_s)
