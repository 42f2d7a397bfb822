"""The load generator over several processes: one asyncio loop per process, samples merged exactly.

One Python event loop handles every response of its process; when the host is oversubscribed and that one
thread is descheduled, every request in flight waits (see LoadResult.loop_lag_ms). Splitting the
concurrency (or the QPS) over processes bounds that wait to each process's share, as perf_analyzer's one
thread per request does. The workers start together at an agreed wall-clock time; percentiles are computed
over the union of all samples, so they stay exact.
"""

from __future__ import annotations

import os
import pickle
import select
import subprocess
import sys
import time
from collections import Counter
from dataclasses import replace

import psutil

from workloads.serving import metrics
from workloads.serving.loadgen import (
    LoadResult,
    LoadSpec,
    default_inputs,
    percentile,
    run_async,
    run_loop,
    server_summary,
    summarize,
    verdict,
)

METRICS_LEAD_S = 0.25  # the server's counters are read this long before the window (within the warm-up)
SPAWN_MARGIN_S = 3.0  # time for spawned workers to import numpy/grpc/tritonclient before the agreed start


def _worker_main() -> None:
    """Child side: a pickled LoadSpec on stdin, the pickled LoadResult on stdout."""
    spec = pickle.loads(sys.stdin.buffer.read())
    res = run_loop(run_async(spec))
    _write_all(sys.stdout.fileno(), pickle.dumps(res))


def _write_all(fd: int, data: bytes) -> None:
    """Write every byte to fd with os.write. After uvloop has run in this process, sys.stdout.buffer.write of more
    than the pipe's 64 KiB (while the parent still reads another worker) kept only the first 64 KiB, silently."""
    view = memoryview(data)
    while view:
        try:
            view = view[os.write(fd, view) :]
        except BlockingIOError:
            select.select([], [fd], [])


def _split(total: int, parts: int, i: int) -> int:
    return total // parts + (1 if i < total % parts else 0)


def run_processes(spec: LoadSpec) -> LoadResult:
    """Run `spec` as spec.processes worker processes and merge their results into one."""
    n = spec.processes
    if spec.mode == "closed" and spec.concurrency < n:
        raise ValueError(f"concurrency {spec.concurrency}: must be >= processes ({n})")
    inputs = spec.inputs or default_inputs(spec.batch)
    start = time.time() + SPAWN_MARGIN_S
    parts = [
        replace(
            spec,
            processes=1,
            concurrency=_split(spec.concurrency, n, i),
            qps=spec.qps / n,
            requests=None if spec.requests is None else _split(spec.requests, n, i),
            metrics_url=None,  # read once, here, around the common window
            inputs=inputs,
            start_at=start,
            seed=spec.seed + i,
        )
        for i in range(n)
    ]
    # Plain subprocesses (not multiprocessing): spawn would re-import the caller's __main__, which can be any
    # script; fork is unsafe once gRPC threads exist.
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "workloads.serving.workers"], stdin=subprocess.PIPE, stdout=subprocess.PIPE
        )
        for _ in parts
    ]
    try:
        for proc, part in zip(procs, parts, strict=True):
            assert proc.stdin is not None
            proc.stdin.write(pickle.dumps(part))
            proc.stdin.close()
        # Read the server's counters a little before the window opens: read at its start, the first requests of the
        # window (workers start on their own clocks) could land before the read finishes and go uncounted.
        time.sleep(max(0.0, start + max(0.0, spec.warmup_s - METRICS_LEAD_S) - time.time()))
        t0, h0 = time.perf_counter(), psutil.cpu_times()
        before = metrics.read(spec.metrics_url, spec.model) if spec.metrics_url else None
        outs = [proc.stdout.read() if proc.stdout else b"" for proc in procs]
        for proc in procs:
            proc.wait()
        after = metrics.read(spec.metrics_url, spec.model) if spec.metrics_url else None
        elapsed, h1 = time.perf_counter() - t0, psutil.cpu_times()
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
    bad = [i for i, p in enumerate(procs) if p.returncode != 0]
    if bad:
        raise RuntimeError(f"load generator worker(s) {bad} failed (exit codes {[procs[i].returncode for i in bad]})")
    results: list[LoadResult] = [pickle.loads(o) for o in outs]
    return merge(spec, results, before, after, elapsed, (h0, h1))


def merge(spec: LoadSpec, parts: list[LoadResult], before, after, elapsed: float, host: tuple) -> LoadResult:
    """One LoadResult from the workers' results (sums, exact percentiles over the union of samples)."""
    window = max(r.window_s for r in parts)
    res = LoadResult(spec={k: v for k, v in spec.__dict__.items() if k != "inputs"}, window_s=window)
    res.sent = sum(r.sent for r in parts)
    res.ok = sum(r.ok for r in parts)
    errors: Counter[str] = Counter()
    for r in parts:
        errors.update(r.errors)
        for k, v in r.error_examples.items():
            res.error_examples.setdefault(k, v)
    res.errors = dict(errors)
    samples = [x for r in parts for x in r.samples_ms]
    res.latency_ms = summarize(samples)
    res.samples_ms = samples
    res.throughput_rps = res.ok / window
    res.throughput_ips = res.throughput_rps * spec.batch
    res.achieved_qps = res.sent / window
    res.target_qps = spec.qps if spec.mode == "open" else None
    for attr in ("send_lag_ms", "loop_lag_ms"):  # per-worker distributions: report the worst worker
        vals = [getattr(r, attr) for r in parts if getattr(r, attr)]
        if vals:
            setattr(res, attr, {k: max(v[k] for v in vals) for k in vals[0]})
    res.generator_cpu = sum(r.generator_cpu for r in parts)
    res.client = f"{len(parts)} processes, each {parts[0].client}" if parts else ""
    done = res.ok + sum(res.errors.values())
    res.generator_cpu_us_per_request = res.generator_cpu * window / done * 1e6 if done else 0.0
    res.backoff_waits = sum(r.backoff_waits for r in parts)
    res.backoff_wait_s = round(sum(r.backoff_wait_s for r in parts), 3)
    h0, h1 = host
    total = sum(h1) - sum(h0)
    res.host_cpu_busy = 1.0 - (h1.idle - h0.idle) / total if total > 0 else 0.0
    if before is not None and after is not None:
        d = after - before
        res.server = server_summary(d, elapsed)
    res.timeline = sorted(x for r in parts for x in r.timeline)
    res.window_start = min(r.window_start for r in parts)  # perf_counter is system-wide monotonic on Linux
    res.verdict = verdict(res)
    return res


__all__ = ["merge", "percentile", "run_processes"]

if __name__ == "__main__":
    _worker_main()
