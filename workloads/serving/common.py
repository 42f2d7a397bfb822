"""Small helpers the serving experiments share: MLP variants, load runs with server CPU (lab generator and
perf_analyzer), result rows."""

from __future__ import annotations

import os
import resource
import time
from pathlib import Path
from typing import Any

from workloads.serving import harness, loadgen, perf
from workloads.serving.repository import DynamicBatching, InstanceGroup, ModelSpec, mlp_spec


def variant(
    name: str,
    preferred: tuple[int, ...] | None = None,
    delay_us: int = 0,
    count: int = 1,
    batching: bool = True,
    max_batch_size: int = 64,
) -> ModelSpec:
    """The MLP with dynamic batching on (preferred sizes, queue delay µs) or off, and `count` CPU instances."""
    db = DynamicBatching(preferred_batch_sizes=preferred or (), max_queue_delay_us=delay_us) if batching else None
    return mlp_spec(
        name, dynamic_batching=db, instance_groups=(InstanceGroup(count=count),), max_batch_size=max_batch_size
    )


def load(served: harness.Served, model: str, **kw: Any) -> tuple[loadgen.LoadResult, float]:
    """One loadgen run against `served`; also returns the server's CPU use during it (cores)."""
    protocol = kw.pop("protocol", "grpc")
    spec = loadgen.LoadSpec(
        url=served.address(protocol), model=model, protocol=protocol, metrics_url=served.metrics_url, **kw
    )
    c0 = harness.cpu_s(served.pid)
    res = loadgen.run(spec)
    total = res.window_s + spec.warmup_s
    return res, (harness.cpu_s(served.pid) - c0) / total if total > 0 else 0.0


def _children_cpu_s() -> float:
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def pa(
    served: harness.Served,
    model: str,
    protocol: str,
    concurrency: int,
    batch: int,
    count: int,
    workdir: Path,
    extra: tuple[str, ...] = (),
) -> tuple[perf.PerfResult, float, float]:
    """One perf_analyzer run (`extra` arguments appended), its own CPU (cores) and the server's CPU (cores)."""
    c0, s0, t0 = _children_cpu_s(), harness.cpu_s(served.pid), time.perf_counter()
    r = perf.run(served.address(protocol), model, protocol, concurrency, batch, count, extra=extra, workdir=workdir)
    wall = time.perf_counter() - t0
    return r, (_children_cpu_s() - c0) / wall, (harness.cpu_s(served.pid) - s0) / wall


def host_note() -> str:
    """How busy the machine already was: results from a shared 2-core box are only comparable within a run."""
    la = os.getloadavg()
    return f"host: {os.cpu_count()} cores, load average {la[0]:.1f}/{la[1]:.1f}/{la[2]:.1f} (1/5/15 min) at start"


def _spin(n: int) -> float:
    """Seconds this thread takes for n turns of a fixed pure-Python loop (the work of a host-speed probe)."""
    t0 = time.perf_counter()
    x = 0
    for i in range(n):
        x += i * i
    return time.perf_counter() - t0


def host_speed(window_s: float, windows: int) -> list[tuple[int, list[float]]]:
    """How much this machine's own speed moves between windows of window_s: the same fixed CPU work (a pure-Python
    loop sized once to take about window_s) timed `windows` times on each CPU this process may use, the calling
    thread pinned there and nothing else of the lab running; [(cpu, [seconds per window])], [] for no windows.

    A virtual machine's vCPU runs as fast as the host lets it (other tenants, the sibling hyperthread, frequency): a
    comparison of two load runs minutes apart cannot be read more finely than the spread of this work's own speed."""
    if windows <= 0:
        return []
    cpus = sorted(os.sched_getaffinity(0))
    turns = 200_000
    for goal in (0.2, window_s):  # sized on a ~0.2 s run, not a 10 ms one; one size for every CPU: the same work
        turns = max(1, int(turns * goal / max(_spin(turns), 1e-6)))
    out: list[tuple[int, list[float]]] = []
    try:
        for cpu in cpus:
            os.sched_setaffinity(0, {cpu})  # pid 0: this thread only
            out.append((cpu, [_spin(turns) for _ in range(windows)]))
    finally:
        os.sched_setaffinity(0, set(cpus))
    return out


def lat(res: loadgen.LoadResult, p: str) -> float:
    return round(res.latency_ms.get(p, float("nan")), 3)


def errors(res: loadgen.LoadResult) -> str:
    return ", ".join(f"{k} {v}" for k, v in sorted(res.errors.items())) or "none"
