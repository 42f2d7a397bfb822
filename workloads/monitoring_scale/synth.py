"""Synthetic series of a fleet of servers, the same values rendered three ways: scraped now (exposition text),
backfilled as history for `promtool tsdb create-blocks-from openmetrics`, and imported into VictoriaMetrics.

Families (per `instance`): `lab_synth_requests_total{route}` counters and the histogram
`lab_synth_request_duration_seconds_bucket{le}` (+ `_count`). Each series has its own rate drawn from a fixed seed,
so values differ between series and over time the way request counters do (compression is not flattered by
identical series).
"""

from __future__ import annotations

import math
import random
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

REQ = "lab_synth_requests_total"
HIST = "lab_synth_request_duration_seconds"
BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)


@dataclass(frozen=True)
class Fleet:
    """`instances` servers, each with `routes` request counters and one latency histogram."""

    instances: int = 20
    routes: int = 5
    seed: int = 55

    def series(self) -> list[tuple[str, str, float]]:
        """(family, label text without braces, rate per second) of every series."""
        rnd = random.Random(self.seed)
        out: list[tuple[str, str, float]] = []
        for i in range(self.instances):
            inst = f'instance="srv-{i:04d}"'
            for r in range(self.routes):
                out.append((REQ, f'{inst},route="/r{r}"', rnd.uniform(1, 50)))
            total = rnd.uniform(20, 200)
            scale = rnd.uniform(0.02, 0.3)  # median latency of this server, s
            for le in (*BUCKETS, math.inf):
                share = 1.0 - math.exp(-le / scale) if le != math.inf else 1.0
                out.append((f"{HIST}_bucket", f'{inst},le="{"+Inf" if le == math.inf else le}"', total * share))
            out.append((f"{HIST}_count", inst, total))
        return out

    def count(self) -> int:
        return self.instances * (self.routes + len(BUCKETS) + 2)


def value(rate: float, t: float, phase: float) -> int:
    """A counter: `rate`/s with a daily swing (so long windows are not flat), integer like real counts."""
    return int(rate * (t + 3600 * math.sin(2 * math.pi * (t / 86400.0 + phase))))


def flat_series(n: int, metric: str, seed: int = 68) -> list[tuple[str, str, float]]:
    """The FlatExporter's series as (family, labels, rate), for history of the same shape."""
    rnd = random.Random(seed)
    return [(metric, f'pod="pod-{i:07d}",shard="s{i % 64}"', rnd.uniform(0.1, 20.0)) for i in range(n)]


Spec = list[tuple[str, str, float]]


def history(series: Spec, start: float, end: float, step_s: float) -> Iterator[tuple[str, str, int, float]]:
    """(family, labels, value, unix time) of every sample from `start` to `end`, series by series."""
    n = int((end - start) // step_s) + 1
    for k, (fam, labels, rate) in enumerate(series):
        phase = (k % 97) / 97.0
        for j in range(n):
            t = start + j * step_s
            yield fam, labels, value(rate, t, phase), t


def write_openmetrics(series: Spec, path: Path, start: float, end: float, step_s: float) -> int:
    """History as OpenMetrics (timestamps in s; no TYPE lines, so names stay exactly as written); samples written."""
    n = 0
    with open(path, "w") as f:
        for fam, labels, v, t in history(series, start, end, step_s):
            f.write(f"{fam}{{{labels}}} {v} {t:.3f}\n")
            n += 1
        f.write("# EOF\n")
    return n


def import_lines(series: Spec, start: float, end: float, step_s: float, chunk: int = 200_000) -> Iterator[bytes]:
    """The same history as Prometheus text with millisecond timestamps (VictoriaMetrics /api/v1/import/prometheus)."""
    buf: list[str] = []
    for fam, labels, v, t in history(series, start, end, step_s):
        buf.append(f"{fam}{{{labels}}} {v} {int(t * 1000)}\n")
        if len(buf) >= chunk:
            yield "".join(buf).encode()
            buf = []
    if buf:
        yield "".join(buf).encode()


class FlatExporter:
    """`n` gauge-like counter series `lab_synth_series{pod, shard}` on an HTTP port: the cardinality load.

    Each scrape renders fresh values (every series advances by its own rate), so ingestion and compression see
    changing data. `labels_per_series` extra constant labels make each series wider when asked.
    """

    def __init__(self, n: int, metric: str = "lab_synth_series", seed: int = 68) -> None:
        self.metric = metric
        self.lock = threading.Lock()
        self.seed = seed
        self.resize(n)
        self.httpd: ThreadingHTTPServer | None = None
        self.render_s: list[float] = []  # time each scrape's body took to render, s (the exporter's own cost)

    def resize(self, n: int) -> None:
        rnd = random.Random(self.seed)
        prefix = [f'{self.metric}{{pod="pod-{i:07d}",shard="s{i % 64}"}} ' for i in range(n)]
        rates = [rnd.uniform(0.1, 20.0) for _ in range(n)]
        with self.lock:
            self.prefix, self.rates, self.n = prefix, rates, n

    def render(self, t: float) -> bytes:
        with self.lock:
            prefix, rates = self.prefix, self.rates
        head = f"# TYPE {self.metric} counter\n"
        return (head + "".join(f"{p}{int(r * t)}\n" for p, r in zip(prefix, rates, strict=True))).encode()

    def serve(self, port: int) -> None:
        import time

        exporter = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                t0 = time.perf_counter()
                body = exporter.render(time.time())
                exporter.render_s.append(time.perf_counter() - t0)
                self.send_response(200)
                self.send_header("Content-Type", "text/plain; version=0.0.4")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self) -> None:
        if self.httpd is not None:
            self.httpd.shutdown()
            self.httpd.server_close()
