"""A metered load generator: sends Triton HTTP inferences and exports what it saw as Prometheus metrics.

Metrics (all labelled by `model`): lab_loadgen_requests_total{outcome=ok|error}, a client-side latency
histogram lab_loadgen_request_duration_seconds with a trace_id exemplar per request (OpenMetrics), the
requests in flight and the target rate. The same W3C `traceparent` is sent to Triton, so a tracing-enabled
server records the request under the exemplar's trace id.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import queue
import secrets
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, start_http_server

BUCKETS = {
    # seconds; "fine" resolves the 1-50 ms range a CPU Triton answers in, "coarse" is one bucket per decade
    "fine": (0.001, 0.002, 0.003, 0.005, 0.0075, 0.01, 0.015, 0.02, 0.03, 0.05, 0.075, 0.1, 0.25, 0.5, 1.0, 2.5),
    "coarse": (0.001, 0.01, 0.1, 1.0, 10.0),
}
DTYPES = {"FP32": np.float32, "FP16": np.float16, "INT32": np.int32, "INT64": np.int64, "FP64": np.float64}


@dataclass
class TrafficSpec:
    url: str  # host:port of Triton's HTTP endpoint
    model: str
    rps: float = 50.0  # target arrival rate (open loop); 0 = closed loop, every worker back to back
    workers: int = 4  # concurrent connections
    distinct_inputs: int = 8  # inputs drawn from a pool this size, so a response cache can hit
    buckets: str = "fine"  # fine | coarse
    batch: int = 1
    keep_samples: bool = False  # keep every latency (s) in Traffic.samples, for exact percentiles


class Traffic:
    """Runs in background threads until stop(); `registry` holds its metrics."""

    def __init__(self, spec: TrafficSpec, registry: CollectorRegistry | None = None) -> None:
        if spec.buckets not in BUCKETS:
            raise ValueError(f"buckets {spec.buckets!r}: allowed {', '.join(BUCKETS)}")
        if spec.workers < 1:
            raise ValueError(f"workers {spec.workers}: must be >= 1")
        self.spec = spec
        self.registry = registry or CollectorRegistry(auto_describe=False)
        r, m = self.registry, spec.model
        self.requests = Counter(
            "lab_loadgen_requests", "Requests completed, by outcome", ["model", "outcome"], registry=r
        )
        self.latency = Histogram(
            "lab_loadgen_request_duration_seconds",
            "Client-side request latency, send to parsed response, s",
            ["model"],
            buckets=BUCKETS[spec.buckets],
            registry=r,
        ).labels(m)
        self.in_flight = Gauge("lab_loadgen_in_flight_requests", "Requests sent, not answered", ["model"], registry=r)
        self.target = Gauge(
            "lab_loadgen_target_rps", "Target arrival rate, req/s (0 = closed loop)", ["model"], registry=r
        )
        self.ok, self.err = self.requests.labels(m, "ok"), self.requests.labels(m, "error")
        self.target.labels(m).set(spec.rps)
        self._stop = threading.Event()
        self._tickets: queue.Queue[float] = queue.Queue(maxsize=10_000)
        self._threads: list[threading.Thread] = []
        self.last_error = ""
        self.samples: list[float] = []  # latencies in s, when spec.keep_samples

    def _inputs(self, client: object) -> list[list[object]]:
        import tritonclient.http as http

        meta = client.get_model_metadata(self.spec.model)  # type: ignore[attr-defined]
        cfg = client.get_model_config(self.spec.model)  # type: ignore[attr-defined]
        batched = int(cfg.get("max_batch_size", 0)) > 0
        rng = np.random.default_rng(0)
        pool = []
        for _ in range(self.spec.distinct_inputs):
            ins = []
            for t in meta["inputs"]:
                shape = [d if d > 0 else 1 for d in t["shape"]]
                if batched:
                    shape[0] = self.spec.batch
                arr = rng.random(shape).astype(DTYPES.get(t["datatype"], np.float32))
                i = http.InferInput(t["name"], shape, t["datatype"])
                i.set_data_from_numpy(arr)
                ins.append(i)
            pool.append(ins)
        return pool

    def _worker(self, n: int) -> None:
        import tritonclient.http as http

        client = http.InferenceServerClient(self.spec.url, connection_timeout=10, network_timeout=30)
        pool = self._inputs(client)
        k = n
        while not self._stop.is_set():
            if self.spec.rps > 0:
                try:
                    self._tickets.get(timeout=0.2)
                except queue.Empty:
                    continue
            trace = secrets.token_hex(16)
            self.in_flight.labels(self.spec.model).inc()
            t0 = time.perf_counter()
            try:
                client.infer(
                    self.spec.model,
                    pool[k % len(pool)],
                    headers={"traceparent": f"00-{trace}-{secrets.token_hex(8)}-01"},
                )
                self.ok.inc()
            except Exception as exc:  # noqa: BLE001 - every failure is an `error` outcome; the last one is kept
                self.err.inc()
                self.last_error = f"{type(exc).__name__}: {exc}"
            finally:
                dt = time.perf_counter() - t0
                self.latency.observe(dt, exemplar={"trace_id": trace})
                if self.spec.keep_samples:
                    self.samples.append(dt)
                self.in_flight.labels(self.spec.model).dec()
            k += 1
        client.close()

    def _pace(self) -> None:
        """Open loop: one ticket every 1/rps seconds, on a fixed schedule (late tickets are not skipped)."""
        period = 1.0 / self.spec.rps
        t = time.perf_counter()
        while not self._stop.is_set():
            t += period
            time.sleep(max(0.0, t - time.perf_counter()))
            try:
                self._tickets.put_nowait(t)
            except queue.Full:
                self.err.inc()  # the server fell so far behind that the client gives up on this arrival

    def start(self) -> Traffic:
        self._threads = [
            threading.Thread(target=self._worker, args=(i,), daemon=True) for i in range(self.spec.workers)
        ]
        if self.spec.rps > 0:
            self._threads.append(threading.Thread(target=self._pace, daemon=True))
        for t in self._threads:
            t.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        for t in self._threads:
            t.join(timeout=30)

    def set_rps(self, rps: float) -> None:
        """Change the open-loop rate (only while started with rps > 0)."""
        self.spec.rps = rps
        self.target.labels(self.spec.model).set(rps)


def register_target(targets_dir: Path, port: int, labels: dict[str, str] | None = None) -> Path:
    """Announce a metrics port to Prometheus through file_sd (the local config watches targets/loadgen-*.json)."""
    targets_dir.mkdir(parents=True, exist_ok=True)
    f = targets_dir / f"loadgen-{port}.json"
    tmp = f.with_suffix(".tmp")
    tmp.write_text(json.dumps([{"targets": [f"127.0.0.1:{port}"], "labels": labels or {}}]))
    os.replace(tmp, f)  # atomic: Prometheus never reads half a file
    return f


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--url", required=True, help="Triton HTTP host:port")
    ap.add_argument("--model", required=True)
    ap.add_argument("--rps", type=float, default=50.0, help="target req/s, 0 = closed loop")
    ap.add_argument("--workers", type=int, default=4)
    ap.add_argument("--buckets", choices=sorted(BUCKETS), default="fine")
    ap.add_argument("--port", type=int, default=9109, help="metrics port")
    ap.add_argument("--duration", type=float, default=0.0, help="seconds, 0 = until SIGTERM")
    a = ap.parse_args(argv)
    tr = Traffic(TrafficSpec(a.url, a.model, a.rps, a.workers, buckets=a.buckets))
    start_http_server(a.port, addr="127.0.0.1", registry=tr.registry)
    tr.start()
    with contextlib.suppress(KeyboardInterrupt):
        time.sleep(a.duration) if a.duration else threading.Event().wait()
    tr.stop()


if __name__ == "__main__":
    main()
