"""Load generator: closed loop (N in flight) or open loop (Poisson arrivals at a target QPS), HTTP or gRPC.

Warm-up first, then a measured window (seconds, or a request count); every latency of the window is kept, so
percentiles are exact (nearest rank over all samples), not estimated from a histogram. Latency is measured
client-side, from just before the request is built to the parsed response (as perf_analyzer does).

Failure policy (LoadSpec.retries / backoff_s / backoff_max_s), bounded and off by default:
- `retries`: a request whose connection was refused (it provably never reached the server) is tried again up to
  this many times, waiting backoff_s * 2**attempt before each try; its latency then includes the waits. Nothing
  that may have reached the server is retried (client.py says why).
- `backoff_s`: closed loop only. A worker whose request failed waits backoff_s before its next request, doubling
  with each consecutive failure of that worker up to backoff_max_s, and back to none after a success. Without it a
  closed loop against a dead server spins: connection refused comes back in microseconds, so N workers count tens
  of thousands of "requests" per second that measure only how fast the client fails. With it an outage is measured
  as an outage: a bounded number of failed requests, and a first success within backoff_max_s of the server's return.
  The open loop needs no back-off: its arrivals are on a schedule whatever the answers.
Every result reports the generator's own CPU per request (generator_cpu_us_per_request).

Clients (clientbench.py measures each one's CPU per request against a real tritonserver), both with the request
serialised once and both on uvloop's event loop when uvloop is installed: HTTP goes over raw keep-alive HTTP/1.1
connections, one per request in flight (fastclient.py, perf_analyzer -i http's shape); gRPC goes as raw HTTP/2
streams on one connection (h2grpc.py, as a grpc channel multiplexes them), without grpcio, whose Python layer cost
three to four times more CPU per request, taken from the server on a small host.
"""

from __future__ import annotations

import asyncio
import math
import threading
import time
from collections import Counter
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import psutil

from workloads.serving import metrics
from workloads.serving.client import InferenceError
from workloads.serving.knee import shortfall_tolerance
from workloads.serving.stats import percentile

PERCENTILES = (50.0, 90.0, 95.0, 99.0, 99.9)
MAX_PRIORITY = 2**32 - 1  # Triton's priority_levels is a uint32 in the model config


@dataclass(frozen=True)
class LoadSpec:
    url: str  # host:port of the protocol's endpoint
    model: str
    protocol: str = "grpc"
    mode: str = "closed"  # closed | open
    concurrency: int = 8  # closed loop: requests in flight
    qps: float = 100.0  # open loop: target arrival rate, requests/s
    batch: int = 1
    warmup_s: float = 1.0
    duration_s: float = 5.0  # measured window, s (ignored when `requests` is set)
    requests: int | None = None  # measured window by count instead of time
    timeout_s: float = 10.0
    metrics_url: str | None = None  # Triton metrics endpoint for server-side queue/compute/batch
    inputs: dict[str, np.ndarray] | None = None  # default: `batch` digits for the MLP's "input"
    seed: int = 0
    max_in_flight: int = 4096  # open loop: beyond this the generator stops sending and counts it
    timeline: bool = False  # keep (send time from window start s, latency ms, error kind or "") per request
    processes: int = 1  # >1: split concurrency/QPS over this many generator processes (see workers.py)
    start_at: float | None = None  # wall-clock time.time() to start at (workers of one run start together)
    retries: int = 0  # retries of a request whose connection was refused (never reached the server), 0..10
    backoff_s: float = 0.0  # closed loop: a worker's wait after a failed request, doubling per consecutive failure
    backoff_max_s: float = 1.0  # cap of that wait (and of a retry's wait), s
    # Triton's schedule-policy request parameter: 1 = the highest of the model's priority_levels; 0 = none sent (the
    # model's default_priority_level). Only the generator's own clients (fastclient.py) send it.
    priority: int = 0

    def check(self) -> None:
        """Refuse values outside the bounds, naming the field (before anything is sent)."""
        if self.mode not in ("closed", "open"):
            raise ValueError(f"mode {self.mode!r}: allowed closed, open")
        if not 0 <= self.retries <= 10:
            raise ValueError(f"retries {self.retries}: allowed 0..10 (bounded: each retry adds load to a dead server)")
        if not 0 <= self.backoff_s <= 60:
            raise ValueError(f"backoff_s {self.backoff_s}: allowed 0..60 s (0 = no back-off)")
        if not 0 < self.backoff_max_s <= 60 or self.backoff_max_s < self.backoff_s:
            raise ValueError(f"backoff_max_s {self.backoff_max_s}: allowed backoff_s ({self.backoff_s})..60 s")
        if type(self.priority) is not int or not 0 <= self.priority <= MAX_PRIORITY:
            raise ValueError(
                f"priority {self.priority!r}: allowed an integer 0..{MAX_PRIORITY} (0 = the model's default level, "
                "1 = the highest)"
            )

    def wait_after(self, failures: int) -> float:
        """Closed loop: seconds a worker waits after its `failures`-th consecutive failed request (0 = none)."""
        if failures <= 0 or self.backoff_s <= 0:
            return 0.0
        return min(self.backoff_max_s, self.backoff_s * 2 ** min(failures - 1, 30))


@dataclass
class LoadResult:
    spec: dict[str, Any]
    window_s: float = 0.0
    sent: int = 0
    ok: int = 0
    errors: dict[str, int] = field(default_factory=dict)  # kind -> count
    error_examples: dict[str, str] = field(default_factory=dict)  # kind -> first message
    latency_ms: dict[str, float] = field(default_factory=dict)  # p50 ... p99.9, mean, max
    throughput_rps: float = 0.0  # successful requests / window
    throughput_ips: float = 0.0  # inferences (requests × batch) / window
    target_qps: float | None = None
    achieved_qps: float = 0.0  # requests sent / window
    send_lag_ms: dict[str, float] = field(default_factory=dict)  # open loop: actual minus scheduled send time
    # How late the generator's event loop wakes up (a 5 ms ticker's overshoot): every in-flight request waits
    # that long for its response to be read, so it is added to the measured latency.
    loop_lag_ms: dict[str, float] = field(default_factory=dict)
    generator_cpu: float = 0.0  # generator process CPU, cores (1.0 = one core busy)
    generator_cpu_us_per_request: float = 0.0  # generator process CPU per finished request of the window, µs
    client: str = ""  # what sent the requests, on which event loop (e.g. "HttpLoadClient on uvloop 0.23.0")
    backoff_waits: int = 0  # closed loop: waits after a failed request (LoadSpec.backoff_s)
    backoff_wait_s: float = 0.0  # their total, worker-seconds
    host_cpu_busy: float = 0.0  # whole machine: fraction of all cores busy during the window (0..1)
    server: dict[str, float] = field(default_factory=dict)  # avg_batch, queue_us, compute_us per request, busy
    verdict: str = ""  # who limited the throughput, and why we think so
    timeline: list[tuple[float, float, str]] = field(default_factory=list)
    window_start: float = 0.0  # time.perf_counter() at the start of the measured window (to align outside events)
    samples_ms: list[float] = field(default_factory=list)  # every successful latency of the window (not stored)

    def to_dict(self) -> dict[str, Any]:
        """Everything but the per-request timeline (that can be 10^5 rows)."""
        d = asdict(self)
        d.pop("timeline")
        d.pop("samples_ms")
        return d


def summarize(lat_ms: list[float]) -> dict[str, float]:
    a = np.sort(np.asarray(lat_ms, dtype=np.float64))
    out = {f"p{p:g}": percentile(a, p) for p in PERCENTILES}
    out["mean"] = float(a.mean()) if len(a) else math.nan
    out["max"] = float(a[-1]) if len(a) else math.nan
    return out


def server_summary(d: metrics.ModelCounters, seconds: float) -> dict[str, float]:
    """Per-request server times from a delta of Triton's statistics over `seconds` of load window."""
    return {
        "avg_batch": d.avg_batch,
        "request_us": d.per_request_us("request_us"),  # server-side latency: receipt to response, inside Triton
        "queue_us": d.per_request_us("queue_us"),
        "compute_infer_us": d.per_request_us("compute_infer_us"),
        "compute_us": d.per_request_us("compute_us"),
        # Triton charges each request of a batch the whole batch's compute time: divide by the batch size
        # to get execution-seconds per second of window (~ instances busy).
        "busy": d.compute_us / max(d.avg_batch, 1.0) / 1e6 / seconds,
        "requests": d.request_success,
    }


def default_inputs(batch: int) -> dict[str, np.ndarray]:
    from workloads.models.data import sample_inputs  # numpy only: the mlp module imports torch

    return {"input": sample_inputs(batch)[0]}


class _Window:
    """Which requests count: started at or after `start`, and (time mode) before `end` / (count mode) the first n."""

    def __init__(self, spec: LoadSpec, t0: float) -> None:
        self.start = t0 + spec.warmup_s
        self.end = self.start + spec.duration_s if spec.requests is None else math.inf
        self.want = spec.requests
        self.lat: list[float] = []
        self.errors: Counter[str] = Counter()
        self.examples: dict[str, str] = {}
        self.sent = 0
        self.backoff_waits, self.backoff_wait_s = 0, 0.0
        self.closed_at: float | None = None
        self.done = asyncio.Event()
        self.timeline: list[tuple[float, float, str]] | None = [] if spec.timeline else None

    def counts(self, t_send: float) -> bool:
        return self.start <= t_send < self.end and not (self.want is not None and self.sent >= self.want)

    def record(self, t_send: float, t_end: float, err: InferenceError | None) -> None:
        if self.timeline is not None:
            self.timeline.append((t_send - self.start, (t_end - t_send) * 1e3, err.kind if err else ""))
        if err is None:
            self.lat.append((t_end - t_send) * 1e3)
        else:
            self.errors[err.kind] += 1
            self.examples.setdefault(err.kind, str(err))
        if self.want is not None and len(self.lat) + sum(self.errors.values()) >= self.want:
            self.closed_at = self.closed_at or t_end
            self.done.set()


async def _one(client: Any, spec: LoadSpec, inputs: Any, win: _Window) -> bool:
    """One request; True when it succeeded."""
    t_send = time.perf_counter()
    counted = win.counts(t_send)
    if counted:
        win.sent += 1
    err = None
    try:
        await client.infer(spec.model, inputs)
    except InferenceError as exc:
        err = exc
    except Exception as exc:  # noqa: BLE001 - anything else is counted, never allowed to stop the run
        err = InferenceError("client", spec.model, "", client.server, repr(exc))
    if counted:
        win.record(t_send, time.perf_counter(), err)
    return err is None


async def sleep_at_least(seconds: float) -> None:
    """Sleep `seconds` of real (perf_counter) time. A loop's timers count from the time it cached at the start of its
    iteration (libuv, hence uvloop, does), so on a loaded host a plain sleep can end early by as much as that
    iteration ran: a back-off wait would then be shorter than the policy says and a worker would fail more often."""
    deadline = time.perf_counter() + seconds
    while (left := deadline - time.perf_counter()) > 0:
        await asyncio.sleep(left)


async def _closed(client: Any, spec: LoadSpec, inputs: Any, win: _Window) -> None:
    async def worker() -> None:
        failures = 0
        while time.perf_counter() < win.end and not win.done.is_set():
            failures = 0 if await _one(client, spec, inputs, win) else failures + 1
            wait = spec.wait_after(failures)
            if wait:
                now = time.perf_counter()
                wait = min(wait, max(0.0, win.end - now))  # never past the window
                if win.start <= now < win.end:
                    win.backoff_waits += 1
                    win.backoff_wait_s += wait
                await sleep_at_least(wait)

    await asyncio.gather(*[worker() for _ in range(spec.concurrency)])


async def _open(client: Any, spec: LoadSpec, inputs: Any, win: _Window, lags: list[float]) -> None:
    rng = np.random.default_rng(spec.seed)
    tasks: set[asyncio.Task[None]] = set()
    nxt = time.perf_counter()
    while nxt < win.end and not (win.want is not None and win.sent >= win.want):
        nxt += rng.exponential(1.0 / spec.qps)
        delay = nxt - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        now = time.perf_counter()
        if nxt >= win.start:
            lags.append((now - nxt) * 1e3)
        if len(tasks) >= spec.max_in_flight:
            if win.counts(now):
                win.sent += 1
                win.record(
                    now, now, InferenceError("generator_limit", spec.model, "", client.server, "too many in flight")
                )
            continue
        t = asyncio.create_task(_one(client, spec, inputs, win))
        tasks.add(t)
        t.add_done_callback(tasks.discard)
    if tasks:
        await asyncio.wait(tasks, timeout=spec.timeout_s + 5)


async def _tick(win: _Window, out: list[float], period_s: float = 0.005) -> None:
    while True:
        t = time.perf_counter()
        await asyncio.sleep(period_s)
        now = time.perf_counter()
        if win.start <= t < win.end:
            out.append((now - t - period_s) * 1e3)


def default_client(spec: LoadSpec) -> Any:
    """The generator's own client for spec.protocol (fastclient.py, h2grpc.py): the cheapest per request measured."""
    from workloads.serving.fastclient import HttpLoadClient
    from workloads.serving.h2grpc import GrpcH2LoadClient

    cls = HttpLoadClient if spec.protocol == "http" else GrpcH2LoadClient
    return cls(spec.url, timeout_s=spec.timeout_s, retries=spec.retries, backoff_s=spec.backoff_s or 0.05)


def loop_name() -> str:
    """The running event loop, as results name it ("uvloop 0.23.0" or "asyncio")."""
    loop = asyncio.get_running_loop()
    if type(loop).__module__.startswith("uvloop"):
        import uvloop

        return f"uvloop {uvloop.__version__}"
    return "asyncio"


def run_loop(coro: Any) -> Any:
    """Run a coroutine to completion on uvloop (when installed: less CPU per request) or asyncio's loop.

    Both default clients are asyncio Protocols, which uvloop runs natively. A caller that sends through grpc.aio
    (client.AsyncClient over gRPC) runs its own asyncio loop instead: grpc.aio's support for other loops is not
    promised."""
    try:
        import uvloop
    except ImportError:
        return asyncio.run(coro)
    return uvloop.run(coro)


async def _stop_watch(win: _Window, stop: threading.Event, period_s: float = 0.01) -> None:
    """End a time window early once `stop` is set (from another thread): nothing is sent after it."""
    while not stop.is_set():
        await asyncio.sleep(period_s)
    win.end = min(win.end, time.perf_counter())


async def run_async(spec: LoadSpec, client: Any = None, stop: threading.Event | None = None) -> LoadResult:
    """Run one load test and return its result (latencies summarised, server counters diffed).

    stop: set from another thread to end a time window before its duration_s (the window then ends when it is set).
    client: what sends each request (default: default_client(spec)); anything with AsyncClient's
    `prepare(inputs, model)`, `infer(model, prepared)`, `close()` and `server` (e.g. caching.CacheAside, which puts
    a Redis cache in front of one). It is closed at the end."""
    spec.check()
    if client is None:
        client = default_client(spec)
    # Serialised once, as perf_analyzer does: the generator's CPU goes to sending, not to re-encoding tensors.
    prio = {"priority": spec.priority} if spec.priority else {}  # clients other than fastclient's take none
    inputs = client.prepare(spec.inputs or default_inputs(spec.batch), spec.model, **prio)
    lags: list[float] = []
    try:
        if spec.start_at is not None:
            await asyncio.sleep(max(0.0, spec.start_at - time.time()))
        t0 = time.perf_counter()
        win = _Window(spec, t0)
        before: metrics.ModelCounters | None = None
        cpu0 = None

        async def mark_start() -> None:
            nonlocal before, cpu0
            await asyncio.sleep(max(0.0, win.start - time.perf_counter()))
            # process_time: CPU of every thread, in ns (psutil's per-process times tick at 10 ms: too coarse for a
            # short window of a client that costs tens of µs per request)
            cpu0 = (time.process_time(), psutil.cpu_times())
            if spec.metrics_url:
                # Read on the loop itself, blocking it for the few ms of one metrics page: no request is sent or
                # finished client-side meanwhile, so every request the window counts starts after this snapshot
                # and the server's count over the window holds all of them (plus the few in flight at its edges).
                # Read in a thread, the fast clients finished window requests before the snapshot was taken, and
                # the server counted fewer requests than the client (142 of 150 in a 150-request window).
                before = metrics.read(spec.metrics_url, spec.model)

        starter = asyncio.create_task(mark_start())
        ticks: list[float] = []
        ticker = asyncio.create_task(_tick(win, ticks))
        stopper = asyncio.create_task(_stop_watch(win, stop)) if stop is not None else None
        if spec.mode == "closed":
            await _closed(client, spec, inputs, win)
        else:
            await _open(client, spec, inputs, win, lags)
        await starter
        ticker.cancel()
        if stopper is not None:
            stopper.cancel()
        t_end = win.closed_at or min(time.perf_counter(), win.end)
        cpu1 = (time.process_time(), psutil.cpu_times())
        after = await asyncio.to_thread(metrics.read, spec.metrics_url, spec.model) if spec.metrics_url else None
    finally:
        await client.close()
    window = max(t_end - win.start, 1e-9)
    res = LoadResult(spec={k: v for k, v in asdict(spec).items() if k != "inputs"}, window_s=window, sent=win.sent)
    res.ok = len(win.lat)
    res.errors = dict(win.errors)
    res.error_examples = win.examples
    res.latency_ms = summarize(win.lat)
    res.throughput_rps = res.ok / window
    res.throughput_ips = res.throughput_rps * spec.batch
    res.achieved_qps = win.sent / window
    res.target_qps = spec.qps if spec.mode == "open" else None
    if lags:
        la = np.sort(np.asarray(lags))
        res.send_lag_ms = {"p50": percentile(la, 50), "p99": percentile(la, 99), "max": float(la[-1])}
    if ticks:
        ta = np.sort(np.asarray(ticks))
        res.loop_lag_ms = {"p50": percentile(ta, 50), "p99": percentile(ta, 99), "max": float(ta[-1])}
    if cpu0 is not None:
        (p0, h0), (p1, h1) = cpu0, cpu1
        res.generator_cpu = (p1 - p0) / window
        idle = (h1.idle + getattr(h1, "iowait", 0.0)) - (h0.idle + getattr(h0, "iowait", 0.0))
        total = sum(h1) - sum(h0)
        res.host_cpu_busy = 1.0 - idle / total if total > 0 else 0.0
        done = res.ok + sum(res.errors.values())
        res.generator_cpu_us_per_request = res.generator_cpu * window / done * 1e6 if done else 0.0
    res.backoff_waits, res.backoff_wait_s = win.backoff_waits, round(win.backoff_wait_s, 3)
    res.client = f"{type(client).__name__} on {loop_name()}"
    if before is not None and after is not None:
        d = after - before
        res.server = server_summary(d, window)
    res.verdict = verdict(res)
    res.timeline = sorted(win.timeline or [])
    res.window_start = win.start
    res.samples_ms = win.lat
    return res


def verdict(res: LoadResult) -> str:
    """Say who limited this run: the generator (achieved < target while the server idles), the server, or errors."""
    if res.sent and res.ok == 0:
        return f"all {res.sent} requests failed ({', '.join(sorted(res.errors))}): see error_examples"
    srv = res.server
    queue_ms = srv.get("queue_us", 0.0) / 1e3
    busy = srv.get("busy", math.nan)
    idle = not math.isnan(busy) and busy < 0.7 and queue_ms < 1.0
    host = f"host CPU {100 * res.host_cpu_busy:.0f}% busy"
    if res.target_qps:
        tol = shortfall_tolerance(res.target_qps, res.window_s)
        lag = res.send_lag_ms.get("p50", 0.0)
        sent = f"sent {res.achieved_qps:.0f}, served {res.throughput_rps:.0f} of {res.target_qps:.0f} req/s"
        srv_txt = f"send lag p50 {lag:.1f} ms, server busy {busy:.2f}, queue {queue_ms:.2f} ms/req, {host}"
        if res.achieved_qps < (1 - tol) * res.target_qps:  # the generator did not even send the target
            if idle:
                return f"generator-bound: {sent}; {srv_txt}"
            return f"generator and server both saturated: {sent}; {srv_txt}"
        if res.throughput_rps < (1 - tol) * res.target_qps:
            if res.errors.get("generator_limit") or queue_ms > 1.0 or not idle:
                return f"server-bound: {sent}; {srv_txt}"
            return f"errors: {res.sent - res.ok} of {res.sent} requests failed ({', '.join(sorted(res.errors))})"
        return "target met"
    if idle and res.generator_cpu > 0.85:
        return f"generator-bound: generator uses {res.generator_cpu:.2f} cores while the server is busy {busy:.2f}"
    return (
        f"closed loop: generator {res.generator_cpu:.2f} cores, server busy {busy:.2f}, queue {queue_ms:.2f} ms, {host}"
    )


def run(spec: LoadSpec, stop: threading.Event | None = None) -> LoadResult:
    """Run a load test (in this process, or over spec.processes worker processes); `stop` ends a time window early
    (one process only)."""
    if spec.processes > 1:
        if stop is not None:
            raise ValueError(f"processes {spec.processes}: a stop event ends only a single-process run (processes 1)")
        from workloads.serving.workers import run_processes

        return run_processes(spec)
    return run_loop(run_async(spec, stop=stop))
