"""What serving experiments share: a Triton of their own on free ports over a repository built from specs.

In a quick run (`lab run --quick`) the server may be one an earlier experiment of the same run started for the same
models and options (the run's pool lends it; see ailab/local/pool.py): `Served.reused_from` names that experiment and
the result's notes say so. Full-size runs always get a server of their own.
"""

from __future__ import annotations

import time
import urllib.request
from collections.abc import Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psutil

from ailab.contract import Context, LocalPlatform
from workloads.serving import loadgen
from workloads.serving.client import Client
from workloads.serving.repository import ModelSpec, build_repository


@dataclass
class Served:
    platform: LocalPlatform
    repo: Path

    def address(self, protocol: str) -> str:
        return self.platform.address("triton", protocol)

    @property
    def metrics_url(self) -> str:
        return self.platform.url("triton", "metrics") + "/metrics"

    @property
    def pid(self) -> int:
        return self.platform.record("triton").pid

    @property
    def reused_from(self) -> str | None:
        """The experiment whose server this is, when a quick run's pool lent it; None for a server of its own."""
        return getattr(self.platform, "reused_from", None)


QUICK_WARM_REQUESTS = 5  # quick runs: enough to get past each model's first, cold requests


def warm_count(ctx: Context, warm_requests: int) -> int:
    """The warm-up requests serve() sends each model of a server it starts: quick runs at most QUICK_WARM_REQUESTS."""
    return min(warm_requests, QUICK_WARM_REQUESTS) if ctx.quick else warm_requests


@contextmanager
def serve(
    ctx: Context,
    specs: Sequence[ModelSpec],
    workdir: Path | None = None,
    supervise: bool = False,
    control_mode: str = "none",
    load_models: Sequence[str] = (),
    args: Sequence[str] = (),
    warm_requests: int = 20,
    reuse: bool | None = None,
    metrics_port: int | None = None,
) -> Iterator[Served]:
    """Build the repository under workdir (default ctx.workdir), start tritonserver through the context's local
    platform on free ports, stop it on exit.

    `reuse`: whether a quick run may lend this call a server an earlier experiment started for the same models and
    options; None = only when nothing done with it changes the server and no state of it carries into the results:
    model control mode none, not supervised (a chaos drill kills it), no response cache (its entries would carry
    over), no rate limiter (it schedules by each instance's executions so far, so a used server's history would
    skew the shares). Never in a full-size run. A reused server is already warm; quick runs send at most
    QUICK_WARM_REQUESTS warm-up requests per model.

    `metrics_port`: the metrics endpoint on this port (one reserved for a Prometheus target written before the
    server starts) instead of a free one; such a server is neither lent nor kept by a quick run's pool.
    """
    workdir = ctx.workdir if workdir is None else workdir
    repo = build_repository(specs, workdir / "repository")
    opts = {
        "triton.model_repository": repo,
        "triton.model_control_mode": control_mode,
        "triton.load_models": list(load_models),
        "triton.args": list(args),
        "triton.cache_size_bytes": 16 << 20 if any(s.response_cache for s in specs) else 0,
        **({"triton.metrics_port": metrics_port} if metrics_port is not None else {}),
    }
    if reuse is None:
        rate_limited = any(a.startswith("--rate-limit") for a in args)
        reuse = control_mode == "none" and not supervise and not opts["triton.cache_size_bytes"] and not rate_limited
    reuse = reuse and metrics_port is None  # a reserved port: no other experiment asks for it
    with start(ctx, repo, opts, workdir / "state", supervise=supervise, reuse=reuse) as served:
        if served.reused_from is None:
            warm(served, [s.name for s in specs if control_mode == "none" or s.name in load_models],
                 warm_count(ctx, warm_requests))  # fmt: skip
        yield served


@contextmanager
def start(
    ctx: Context,
    repo: Path,
    options: Mapping[str, Any],
    state_dir: Path,
    supervise: bool = False,
    reuse: bool = False,
) -> Iterator[Served]:
    """tritonserver over a built repository through the context's platform (`reuse` as in serve: quick runs only),
    returned once its metrics port answers too: Triton opens it a few ms after it reports ready, and a runner that
    reads the counters first thing was refused (seen in d39.e5)."""
    kw = {"reuse": True} if reuse and ctx.quick else {}  # a factory without pooling need not know the argument
    with ctx.platform(services=["triton"], state_dir=state_dir, options=dict(options), supervise=supervise, **kw) as p:
        served = Served(p, repo)
        wait_metrics(served)
        yield served


def wait_metrics(served: Served, timeout_s: float = 30.0) -> None:
    """Poll the metrics endpoint until it answers (TimeoutError naming the URL after timeout_s)."""
    t0 = time.monotonic()
    while True:
        try:
            with urllib.request.urlopen(served.metrics_url, timeout=2.0):
                return
        except OSError as exc:
            if time.monotonic() - t0 > timeout_s:
                raise TimeoutError(
                    f"tritonserver metrics {served.metrics_url}: no answer after {timeout_s:g} s"
                ) from exc
            time.sleep(0.02)


def warm(served: Served, models: Sequence[str], n: int) -> None:
    """Send n requests to each model so that no experiment measures the first, cold ones (d07.e2 measures those).
    The models are warmed side by side, each by its own client sending its n one after another: a server of
    several models (the multi-model and rate-limiter experiments, whose models hold an instance 10-50 ms a request)
    is ready in the time of its slowest model's warm-up instead of the sum of all."""
    if n <= 0 or not models:
        return
    x = loadgen.default_inputs(1)

    def one(model: str) -> None:
        with Client(served.address("grpc"), "grpc", timeout_s=60) as c:
            for _ in range(n):
                c.infer(model, x)

    if len(models) == 1:
        one(models[0])
        return
    with ThreadPoolExecutor(max_workers=len(models)) as pool:
        for done in [pool.submit(one, m) for m in models]:
            done.result()  # a model that failed to answer fails the warm-up, naming it (InferenceError)


def tree(pid: int) -> list[psutil.Process]:
    """The server and every process under it (python backend stubs)."""
    try:
        p = psutil.Process(pid)
        return [p, *p.children(recursive=True)]
    except psutil.Error:
        return []


def rss_mib(pid: int) -> tuple[float, float]:
    """(server RSS, stubs RSS) in MiB."""
    procs = tree(pid)
    mems = []
    for p in procs:
        try:
            mems.append(p.memory_info().rss / 2**20)
        except psutil.Error:
            mems.append(0.0)
    return (mems[0] if mems else 0.0), sum(mems[1:])


def cpu_s(pid: int) -> float:
    """CPU seconds (user + system) used so far by the server and its stubs."""
    total = 0.0
    for p in tree(pid):
        try:
            t = p.cpu_times()
            total += t.user + t.system
        except psutil.Error:
            continue
    return total
