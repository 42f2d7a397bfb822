"""Inference worker processes for the scheduling days (d72, d83): the Day-3 MLP in ONNX Runtime, one pipe each.

Each worker is a spawned OS process holding one ONNX Runtime session (one intra-op thread). The transport is a
`multiprocessing.Pipe` per worker: the request (tag, float32 batch) is pickled over it and the logits come back
the same way with the worker's own timestamps, so the caller can split a round trip into compute and transport.
Workers can stand for slower or bigger devices on purpose: with `device_ms` d and `slowdown` k, a task holds its
worker for k x (c + d), c being the measured real inference; the part beyond c is a sleep. d models accelerator
time the tiny MLP does not have (it computes a digit batch in ~0.1 ms, less than a pipe round trip), k a device k
times slower; sleeping rather than computing keeps a 2-core host's CPU out of what is being compared.
The parent reads replies on its asyncio loop (`attach`), or synchronously (`roundtrip`) for calibration.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import numpy as np

from ailab.contract.paths import REPO_ROOT

READY_TIMEOUT_S = 60.0  # spawning imports numpy + onnxruntime: ~1 s each on an idle 2-core host, more when busy


@dataclass(frozen=True)
class Reply:
    """What a worker sends back for one task; times are time.perf_counter() (CLOCK_MONOTONIC, shared by processes)."""

    tag: Any
    logits: np.ndarray | None  # None for a no-op (transport-only) task
    compute_s: float  # session.run time, s
    t_start: float  # worker began the task (after unpickling), s
    t_end: float  # worker finished the task incl. any device/slowdown sleep, s

    @property
    def busy_s(self) -> float:
        return self.t_end - self.t_start


def _worker_main(conn: Connection, model: str, slowdown: float, threads: int, device_ms: float = 0.0) -> None:
    """Child process: serve (tag, batch, run) tasks until None arrives; run=False echoes without inference."""
    from workloads.models import ortbench

    sess = ortbench.session(Path(model), "all", intra_threads=threads)
    name = sess.get_inputs()[0].name
    conn.send(("ready", os.getpid()))
    while True:
        msg = conn.recv()
        if msg is None:
            break
        tag, x, run = msg
        t0 = time.perf_counter()
        y, compute = None, 0.0
        if run:
            y = sess.run(None, {name: x})[0]
            compute = time.perf_counter() - t0
            pad = slowdown * (compute + device_ms * 1e-3) - compute
            if pad > 0:
                time.sleep(pad)
        conn.send((tag, y, compute, t0, time.perf_counter()))
    conn.close()


def host_note() -> str:
    """The host the pool runs on: cores and load average when the run starts (results record how busy it was)."""
    la = os.getloadavg()
    return f"host: {os.cpu_count()} cores, load average {la[0]:.1f}/{la[1]:.1f}/{la[2]:.1f} (1/5/15 min) at start"


def default_model() -> Path:
    """The Day-3 MLP as ONNX, exported once into .lab/work/models (shared with the serving days)."""
    from ailab.contract.paths import work_dir
    from workloads.models.mlp import export_default_model

    return export_default_model(work_dir() / "models")


class WorkerPool:
    """N worker processes; `send` a task to worker i, replies come to `on_reply(i, Reply)` once `attach`ed."""

    def __init__(
        self,
        n: int,
        slowdown: Sequence[float] | None = None,
        threads: int = 1,
        model: Path | None = None,
        device_ms: float = 0.0,
    ):
        self.n = n
        self.slowdown = [float(s) for s in (slowdown or [1.0] * n)]
        if len(self.slowdown) != n:
            raise ValueError(f"slowdown {list(self.slowdown)}: needs one factor per worker ({n})")
        self.threads = threads
        self.device_ms = device_ms
        self.model = model or default_model()
        self.conns: list[Connection] = []
        self.procs: list[Any] = []
        self.pids: list[int] = []
        self.dead: dict[int, int | None] = {}  # worker -> exit code, for workers whose pipe closed while attached
        self._loop: asyncio.AbstractEventLoop | None = None

    def __enter__(self) -> WorkerPool:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def start(self) -> None:
        """Spawn every worker and wait until each has loaded its session."""
        # A fresh interpreter per worker (`python -m workloads.sched.pool`), not multiprocessing's fork (it would copy
        # the parent's ORT/asyncio threads) or spawn (it re-imports the caller's __main__, e.g. a script or pytest).
        for i in range(self.n):
            parent, child = socket.socketpair()
            cmd = [sys.executable, "-m", "workloads.sched.pool", "--fd", str(child.fileno())]
            cmd += ["--model", str(self.model), "--slowdown", str(self.slowdown[i]), "--threads", str(self.threads)]
            cmd += ["--device-ms", str(self.device_ms)]
            p = subprocess.Popen(cmd, pass_fds=(child.fileno(),), cwd=REPO_ROOT)
            child.close()
            self.conns.append(Connection(parent.detach()))
            self.procs.append(p)
        for i, c in enumerate(self.conns):
            try:
                if not c.poll(READY_TIMEOUT_S):
                    raise EOFError
                self.pids.append(c.recv()[1])
            except EOFError:
                code = self.procs[i].poll()
                self.close()
                raise RuntimeError(
                    f"worker {i} did not load {self.model} within {READY_TIMEOUT_S:g} s (exit code {code})"
                ) from None

    def close(self) -> None:
        """Stop exactly the workers this pool started."""
        self.detach()
        for c in self.conns:
            with contextlib.suppress(OSError):  # a worker that already died has closed its end
                c.send(None)
        for p in self.procs:
            try:
                p.wait(timeout=5)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
        for c in self.conns:
            c.close()
        self.conns, self.procs = [], []

    def send(self, i: int, tag: Any, x: np.ndarray, run: bool = True) -> None:
        """Hand a task to worker i (blocks only while the pipe takes the bytes; send to idle workers only)."""
        self.conns[i].send((tag, x, run))

    def attach(self, on_reply: Callable[[int, Reply], None]) -> None:
        """Deliver replies on the running event loop: one reader per worker pipe, no threads."""
        self._loop = asyncio.get_running_loop()
        for i, c in enumerate(self.conns):
            self._loop.add_reader(c.fileno(), self._drain, i, c, on_reply)

    def detach(self) -> None:
        if self._loop is not None:
            for i, c in enumerate(self.conns):
                if i not in self.dead:
                    self._loop.remove_reader(c.fileno())
            self._loop = None

    def _drain(self, i: int, c: Connection, on_reply: Callable[[int, Reply], None]) -> None:
        try:
            while c.poll():
                on_reply(i, Reply(*c.recv()))
        except (EOFError, OSError):  # the worker exited: stop watching its pipe, callers see it in `dead`
            if self._loop is not None:
                self._loop.remove_reader(c.fileno())
            self.dead[i] = self.procs[i].poll()

    def check_alive(self) -> None:
        """Raise RuntimeError naming every worker whose pipe closed (it exited or was killed)."""
        if self.dead:
            gone = ", ".join(f"worker {i} (pid {self.pids[i]}, exit code {code})" for i, code in self.dead.items())
            raise RuntimeError(f"{gone} exited while tasks were in flight")

    def roundtrip(self, i: int, x: np.ndarray, run: bool = True, tag: Any = 0) -> tuple[Reply, float]:
        """One synchronous task on worker i (not while attached); returns its reply and the round trip in s."""
        t0 = time.perf_counter()
        self.conns[i].send((tag, x, run))
        r = Reply(*self.conns[i].recv())
        return r, time.perf_counter() - t0

    def cpu_s(self) -> float:
        """CPU seconds (user + system) used so far by all workers."""
        import psutil

        total = 0.0
        for pid in self.pids:
            try:
                t = psutil.Process(pid).cpu_times()
                total += t.user + t.system
            except psutil.NoSuchProcess:
                pass
        return total


@dataclass(frozen=True)
class Calibration:
    """Sequential round trips on one idle worker: what a task costs and what share of it is transport, s."""

    worker: int
    batch: int
    roundtrip_s: float  # mean send -> reply received, with the model
    compute_s: float  # mean session.run
    busy_s: float  # mean worker busy (compute + device/slowdown sleep)
    noop_s: float  # mean round trip of the same batch when the worker skips the model: transport + wake-ups

    @property
    def transport_s(self) -> float:
        return self.roundtrip_s - self.busy_s


def calibrate(pool: WorkerPool, x: np.ndarray, tasks: int = 100, warmup: int = 20) -> list[Calibration]:
    """Measure every worker alone (one task in flight): round trip, compute, busy and no-op round trip, means."""
    out = []
    for i in range(pool.n):
        for _ in range(warmup):
            pool.roundtrip(i, x)
        rts, comp, busy, noop = [], [], [], []
        for _ in range(tasks):
            r, rt = pool.roundtrip(i, x)
            rts.append(rt)
            comp.append(r.compute_s)
            busy.append(r.busy_s)
            noop.append(pool.roundtrip(i, x, run=False)[1])
        means = [float(np.mean(v)) for v in (rts, comp, busy, noop)]
        out.append(Calibration(i, len(x), *means))
    return out


def main(argv: list[str] | None = None) -> None:
    """Worker entry point: serve the model on the inherited socket fd until the parent sends None."""
    ap = argparse.ArgumentParser(description="An inference worker of workloads.sched (started by WorkerPool).")
    ap.add_argument("--fd", type=int, required=True)
    ap.add_argument("--model", required=True)
    ap.add_argument("--slowdown", type=float, default=1.0)
    ap.add_argument("--device-ms", type=float, default=0.0)
    ap.add_argument("--threads", type=int, default=1)
    a = ap.parse_args(argv)
    _worker_main(Connection(a.fd), a.model, a.slowdown, a.threads, a.device_ms)


if __name__ == "__main__":
    main()
