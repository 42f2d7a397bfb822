"""Inference workers spread over the GPUs of one host, behind the lab's dispatcher (d51.e1, d51.e5, d56.e3).

One worker process per GPU, pinned by CUDA_VISIBLE_DEVICES, holds a bf16 MLP stack and answers one request at a
time over its own pipe (a Triton model instance without batching). Closed-loop client threads ask the dispatcher
(workloads/sched/dispatch.py: round robin, least load, ...) for a worker per request, so the spread over the GPUs,
the throughput and the latency percentiles come from the same policy code the scheduling days measure. On a CPU host
the workers are CPU processes (fp32): the code path the tests run; the runners measure only with 2 or more GPUs.

Worker process: python -m workloads.parallel.multigpu --fd N --device cuda|cpu --dim D --layers L --batch B
"""

from __future__ import annotations

import argparse
import contextlib
import math
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from typing import Any

from ailab.contract.paths import REPO_ROOT
from workloads.sched.dispatch import make
from workloads.serving.stats import percentile

READY_TIMEOUT_S = 180.0  # a worker imports torch and builds its model before it says ready


@dataclass(frozen=True)
class Shape:
    dim: int = 4096
    layers: int = 8
    batch: int = 16

    def check(self) -> None:
        limits = (("dim", self.dim, 8, 32768), ("layers", self.layers, 1, 64), ("batch", self.batch, 1, 4096))
        for name, v, lo, hi in limits:
            if not lo <= v <= hi:
                raise ValueError(f"{name} {v}: allowed {lo}..{hi}")


def _serve(conn: Connection, device: str, shape: Shape) -> None:
    """Worker: build the stack, say ready, then answer each task (a tag) with its service time until None."""
    import torch

    torch.manual_seed(0)
    torch.set_num_threads(1)
    dt = torch.bfloat16 if device == "cuda" else torch.float32
    layers = [torch.nn.Linear(shape.dim, shape.dim) for _ in range(shape.layers)]
    model = torch.nn.Sequential(*[m for lin in layers for m in (lin, torch.nn.ReLU())]).to(device, dt).eval()
    x = torch.randn(shape.batch, shape.dim, device=device, dtype=dt)
    name = torch.cuda.get_device_name(0) if device == "cuda" else "cpu"
    with torch.inference_mode():
        model(x)  # first call: kernels chosen, memory allocated
        if device == "cuda":
            torch.cuda.synchronize()
        conn.send(("ready", os.getpid(), name, os.environ.get("CUDA_VISIBLE_DEVICES", "")))
        while (msg := conn.recv()) is not None:
            t0 = time.perf_counter()
            model(x)
            if device == "cuda":
                torch.cuda.synchronize()
            conn.send((msg, time.perf_counter() - t0))
    conn.close()


@dataclass
class Worker:
    index: int
    gpu: str  # CUDA_VISIBLE_DEVICES value, "" for a CPU worker
    proc: subprocess.Popen[bytes]
    conn: Connection
    lock: threading.Lock = field(default_factory=threading.Lock)
    name: str = ""

    def infer(self, tag: int) -> float:
        """One request; the worker's service time (s). Raises EOFError if the worker died."""
        with self.lock:
            self.conn.send(tag)
            got, service = self.conn.recv()
        if got != tag:
            raise RuntimeError(f"worker {self.index}: reply for task {got}, expected {tag}")
        return float(service)


class Pool:
    """One worker per device: GPUs 0..n-1 (each its own process, CUDA_VISIBLE_DEVICES=i) or n CPU processes."""

    def __init__(self, n: int, device: str, shape: Shape) -> None:
        if n < 1:
            raise ValueError(f"workers {n}: allowed >= 1")
        if device not in ("cuda", "cpu"):
            raise ValueError(f"device {device!r}: allowed cuda, cpu")
        shape.check()
        self.n, self.device, self.shape = n, device, shape
        self.workers: list[Worker] = []

    def __enter__(self) -> Pool:
        try:
            for i in range(self.n):
                parent, child = socket.socketpair()
                env = {**os.environ, "CUDA_VISIBLE_DEVICES": str(i) if self.device == "cuda" else ""}
                cmd = [sys.executable, "-m", "workloads.parallel.multigpu", "--fd", str(child.fileno())]
                cmd += ["--device", self.device, "--dim", str(self.shape.dim), "--layers", str(self.shape.layers)]
                cmd += ["--batch", str(self.shape.batch)]
                p = subprocess.Popen(cmd, pass_fds=(child.fileno(),), cwd=REPO_ROOT, env=env)
                child.close()
                self.workers.append(Worker(i, env["CUDA_VISIBLE_DEVICES"], p, Connection(parent.detach())))
            for w in self.workers:
                if not w.conn.poll(READY_TIMEOUT_S):
                    raise RuntimeError(f"worker {w.index} not ready within {READY_TIMEOUT_S:.0f} s")
                _, _, w.name, _ = w.conn.recv()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        for w in self.workers:
            with contextlib.suppress(OSError):
                w.conn.send(None)
        for w in self.workers:
            try:
                w.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                w.proc.kill()
            w.conn.close()
        self.workers = []


@dataclass
class LoadRun:
    concurrency: int
    seconds: float
    latencies_ms: list[float]
    per_worker: list[int]
    errors: int
    windows: list[dict[str, Any]]

    @property
    def throughput(self) -> float:
        return len(self.latencies_ms) / self.seconds if self.seconds else 0.0

    def summary(self) -> dict[str, Any]:
        lat = sorted(self.latencies_ms)
        return {
            "concurrency": self.concurrency,
            "requests": len(lat),
            "errors": self.errors,
            "throughput": round(self.throughput, 1),
            "p50_ms": round(percentile(lat, 50), 3) if lat else None,
            "p99_ms": round(percentile(lat, 99), 3) if lat else None,
            "per_worker": list(self.per_worker),
        }


def closed_loop(
    pool: Pool,
    concurrency: int,
    seconds: float,
    policy: str = "least_load",
    window_s: float = 0.0,
    sample: Callable[[], dict[str, Any]] | None = None,
) -> LoadRun:
    """`concurrency` client threads, each sending its next request when the last returns, for `seconds`; the
    dispatcher picks the worker. With window_s > 0, per-window p50/p99/errors (and `sample()`'s fields) are kept."""
    if concurrency < 1 or seconds <= 0:
        raise ValueError(f"concurrency {concurrency} / seconds {seconds}: allowed >= 1 / > 0")
    sched = make(policy, pool.n)
    guard = threading.Lock()
    lat: list[tuple[float, float]] = []  # (finish time, latency ms)
    errs: list[float] = []
    per = [0] * pool.n
    tags = iter(range(1 << 62))
    t_start = time.perf_counter()
    t_end = t_start + seconds

    def client() -> None:
        while time.perf_counter() < t_end:
            with guard:
                i = sched.pick()
                sched.dispatched(i)
                tag = next(tags)
            t0 = time.perf_counter()
            try:
                service = pool.workers[i].infer(tag)
            except (EOFError, OSError, RuntimeError):
                with guard:
                    sched.completed(i, 0.0)
                    errs.append(time.perf_counter())
                time.sleep(0.05)  # a dead worker is an outage, not a flood of instant failures
                continue
            t1 = time.perf_counter()
            with guard:
                sched.completed(i, service)
                per[i] += 1
                lat.append((t1, (t1 - t0) * 1e3))

    # Windows are cut on a fixed schedule from the start (t_start + k * window_s), not from when this thread wakes:
    # on a busy host the sampling thread can wake late, and a late wake must not merge or shift windows. Requests
    # are bucketed by their finish time afterwards; only the live sample is taken when the thread gets to it.
    edges: list[float] = []
    if window_s > 0:
        n = max(1, math.ceil(seconds / window_s - 1e-9))
        edges = [min(t_start + k * window_s, t_end) for k in range(1, n + 1)]
    threads = [threading.Thread(target=client, daemon=True) for _ in range(concurrency)]
    for t in threads:
        t.start()
    live: list[dict[str, Any]] = []
    for w1 in edges:
        time.sleep(max(0.0, w1 - time.perf_counter()))
        live.append(sample() if sample is not None else {})
    for t in threads:
        t.join()
    windows: list[dict[str, Any]] = []
    for k, w1 in enumerate(edges):
        w0 = edges[k - 1] if k else t_start
        last = k == len(edges) - 1  # requests in flight at the end finish after it: they belong to the last window
        vals = sorted(ms for t, ms in lat if w0 <= t and (last or t < w1))
        windows.append(
            {
                "until_s": round(w1 - t_start, 1),
                "requests": len(vals),
                "errors": sum(1 for t in errs if w0 <= t and (last or t < w1)),
                "p50_ms": round(percentile(vals, 50), 3) if vals else None,
                "p99_ms": round(percentile(vals, 99), 3) if vals else None,
                **live[k],
            }
        )
    elapsed = time.perf_counter() - t_start
    return LoadRun(concurrency, elapsed, [ms for _, ms in lat], per, len(errs), windows)


def gpu_utilisation() -> Callable[[], dict[str, Any]]:
    """A sampler of each GPU's utilisation (%) and memory used (MiB) through NVML, as the lab's exporter reads them."""
    import pynvml

    pynvml.nvmlInit()
    handles = [pynvml.nvmlDeviceGetHandleByIndex(i) for i in range(pynvml.nvmlDeviceGetCount())]

    def sample() -> dict[str, Any]:
        out: dict[str, Any] = {}
        for i, h in enumerate(handles):
            out[f"gpu{i}_util_pct"] = pynvml.nvmlDeviceGetUtilizationRates(h).gpu
            out[f"gpu{i}_mem_mib"] = round(pynvml.nvmlDeviceGetMemoryInfo(h).used / 2**20)
        return out

    return sample


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--fd", type=int, required=True)
    ap.add_argument("--device", choices=("cuda", "cpu"), required=True)
    ap.add_argument("--dim", type=int, default=Shape.dim)
    ap.add_argument("--layers", type=int, default=Shape.layers)
    ap.add_argument("--batch", type=int, default=Shape.batch)
    a = ap.parse_args(argv)
    _serve(Connection(a.fd), a.device, Shape(a.dim, a.layers, a.batch))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
