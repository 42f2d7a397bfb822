"""What serving experiments share: a Triton of their own on free ports over a repository built from specs."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

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
) -> Iterator[Served]:
    """Build the repository under workdir (default ctx.workdir), start tritonserver through the context's local
    platform on free ports, stop it on exit."""
    workdir = ctx.workdir if workdir is None else workdir
    repo = build_repository(specs, workdir / "repository")
    opts = {
        "triton.model_repository": repo,
        "triton.model_control_mode": control_mode,
        "triton.load_models": list(load_models),
        "triton.args": list(args),
        "triton.cache_size_bytes": 16 << 20 if any(s.response_cache for s in specs) else 0,
    }
    with ctx.platform(services=["triton"], state_dir=workdir / "state", options=opts, supervise=supervise) as p:
        served = Served(p, repo)
        warm(served, [s.name for s in specs if control_mode == "none" or s.name in load_models], warm_requests)
        yield served


def warm(served: Served, models: Sequence[str], n: int) -> None:
    """Send n requests to each model so that no experiment measures the first, cold ones (d07.e2 measures those)."""
    if n <= 0:
        return
    x = loadgen.default_inputs(1)
    with Client(served.address("grpc"), "grpc", timeout_s=60) as c:
        for m in models:
            for _ in range(n):
                c.infer(m, x)


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
