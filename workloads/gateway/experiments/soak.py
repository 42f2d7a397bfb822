"""Soak: a long open-loop run at a fixed rate through the gateway into Triton (d21.e4, d28.e4, d35.e4, d42.e4,
d54.e5), checking per window the error count, p99 drift, and the servers' resident memory and open file
descriptors, with pass/fail against thresholds given as parameters."""

from __future__ import annotations

import asyncio
import time
from typing import Annotated, Any

from pydantic import Field

from ailab.contract import Column, Context, Output, Params, Series, Table
from workloads.gateway import load
from workloads.gateway.experiments import Int, Num
from workloads.gateway.stack import gateway


class SoakParams(Params):
    rate: Annotated[Num, Field(gt=0, le=5000)] = Field(default=200.0, description="offered load, req/s (open loop)")
    duration_s: Annotated[Num, Field(ge=10, le=3600)] = Field(default=600.0, description="the whole run, s")
    window_s: Annotated[Num, Field(ge=1, le=300)] = Field(default=10.0, description="reporting window, s")
    max_in_flight: Annotated[Int, Field(ge=1, le=4096)] = 512
    max_error_rate: Annotated[Num, Field(ge=0, le=1)] = Field(default=0.001, description="failed / sent, whole run")
    max_p99_drift: Annotated[Num, Field(ge=1, le=100)] = Field(
        default=2.0, description="p99 of the last windows / p99 of the first windows (a quarter of the run each)"
    )
    max_rss_growth_mib: Annotated[Num, Field(ge=0, le=100_000)] = Field(
        default=100.0, description="growth of each server's RSS (process tree), idle after the run vs before, MiB"
    )
    max_fd_growth: Annotated[Int, Field(ge=0, le=100_000)] = Field(
        default=50, description="growth of each server's open fds (process tree), idle after the run vs before"
    )
    idle_settle_s: Annotated[Num, Field(ge=1, le=600)] = Field(
        default=30.0,
        description="after the run, read the servers again every second for up to this long until each one's open "
        "fds are back within max_fd_growth: HAProxy keeps idle server-side connections pooled (in its fds and "
        "Triton's) and closes them on its pool-purge-delay ticks (5 s by default); a leak does not come back",
    )


def _spec() -> dict[str, Any]:
    return {
        "frontends": [{"name": "api", "default_backend": "triton"}],
        "backends": [{"name": "triton", "servers": [{"name": "triton", "target": "triton.http"}]}],
    }


def _tree(pid: int) -> tuple[float, int]:
    """RSS (MiB) and open fds summed over a process and its children (Triton's python-backend stubs)."""
    import psutil

    try:
        root = psutil.Process(pid)
        procs = [root, *root.children(recursive=True)]
    except psutil.NoSuchProcess:
        return float("nan"), -1
    rss, fds = 0, 0
    for p in procs:
        try:
            rss += p.memory_info().rss
            fds += p.num_fds()
        except psutil.NoSuchProcess:
            continue
    return rss / 2**20, fds


def soak(ctx: Context, p: SoakParams) -> Output:
    """Fixed-rate run for duration_s: per-window requests, errors, p50/p99, server RSS and fds; verdicts."""
    import psutil

    marks: list[dict[str, float]] = []  # one per window: t, triton/haproxy rss and fds, host cpu
    idle_marks: list[dict[str, float]] = []  # before and after the run, no client connected
    with gateway(ctx, _spec()) as gw:
        pids = {"triton": gw.plat.record("triton").pid, "haproxy": gw.plat.record("haproxy").pid}

        async def read() -> dict[str, float]:
            m: dict[str, float] = {}
            for name, pid in pids.items():
                m[f"{name}_rss"], m[f"{name}_fds"] = await asyncio.to_thread(_tree, pid)
            return m

        async def idle(before: dict[str, float] | None = None) -> dict[str, float]:
            """Servers with no client connected (the generator's pool closed, 1 s to settle); after the run
            (before given), read again every second until the fds are back (idle_settle_s at most)."""
            waited = 0.0
            while True:
                await asyncio.sleep(1.0)
                m, waited = await read(), waited + 1.0
                if before is None or waited >= p.idle_settle_s or _fds_back(before, m, p.max_fd_growth):
                    return {**m, "settle_s": waited}

        async def go() -> load.Run:
            async with load.Client(gw.url("api")) as warm:
                await load.closed_loop(warm, 4, 40, 10)
            idle_marks.append(await idle())
            async with load.Client(gw.url("api")) as c:
                t0 = time.perf_counter()
                task = asyncio.create_task(load.open_loop(c, p.rate, p.duration_s, p.max_in_flight))
                psutil.cpu_percent(interval=None)
                while not task.done():
                    await asyncio.wait([task], timeout=p.window_s)
                    t, cpu = time.perf_counter() - t0, psutil.cpu_percent(interval=None)
                    marks.append({"t": t, "host_cpu": cpu, **await read()})
                run = task.result()
            idle_marks.append(await idle(idle_marks[0]))
            return run

        run = asyncio.run(go())
        restarts = gw.plat.restarts("triton")
    return _output(run, marks, idle_marks, p, restarts)


def _output(
    run: load.Run, marks: list[dict[str, float]], idle: list[dict[str, float]], p: SoakParams, restarts: int
) -> Output:
    """idle: the servers' RSS and fds before and after the run with no client connected (what a leak shows in;
    under load the fds also count the requests in flight)."""
    w = Table.of(
        "windows",
        [
            ("until", "s"),
            ("sent", ""),
            ("failed", ""),
            ("p50", "ms"),
            ("p99", "ms"),
            ("triton_rss", "MiB"),
            ("triton_fds", ""),
            ("haproxy_rss", "MiB"),
            ("haproxy_fds", ""),
            ("host_cpu", "%"),
        ],
        caption="requests by send time; RSS and fds summed over each server's process tree at the window's end "
        "(under load: fds include the connections of requests in flight); host_cpu: the whole host (other agents "
        "included)",
    )
    lat = Series("p99", x=Column("time", "s"), y=Column("p99", "ms"))
    mem = Series("rss", x=Column("time", "s"), y=Column("RSS", "MiB"))
    fds = Series("fds", x=Column("time", "s"), y=Column("open fds", ""))
    start = 0.0
    p99s = []
    for m in marks:
        ss = [s for s in run.samples if start <= s.t_s < m["t"]]
        ok = [s.latency_ms for s in ss if s.status == 200]
        p99 = load.percentile(ok, 99)
        p99s.append(p99)
        w.add(
            round(m["t"], 1),
            len(ss),
            sum(1 for s in ss if s.status != 200),
            round(load.percentile(ok, 50), 3),
            round(p99, 3),
            round(m["triton_rss"], 1),
            int(m["triton_fds"]),
            round(m["haproxy_rss"], 1),
            int(m["haproxy_fds"]),
            m["host_cpu"],
        )
        lat.point("admitted p99", round(m["t"], 1), round(p99, 3))
        mem.point("triton", round(m["t"], 1), round(m["triton_rss"], 1))
        mem.point("haproxy", round(m["t"], 1), round(m["haproxy_rss"], 1))
        fds.point("triton", round(m["t"], 1), m["triton_fds"])
        fds.point("haproxy", round(m["t"], 1), m["haproxy_fds"])
        start = m["t"]
    failed = sum(1 for s in run.samples if s.status != 200)
    sent = len(run.samples)
    q = max(1, len(marks) // 4)
    first_ok = [s.latency_ms for s in run.samples if s.status == 200 and s.t_s < marks[q - 1]["t"]]
    last_ok = [s.latency_ms for s in run.samples if s.status == 200 and s.t_s >= marks[-q - 1]["t"]] if marks else []
    drift = load.percentile(last_ok, 99) / load.percentile(first_ok, 99) if first_ok and last_ok else float("nan")
    v = Table.of("verdict", [("check", ""), ("value", ""), ("threshold", ""), ("result", "")])
    err_rate = failed / max(1, sent)
    v.add("error rate (failed / sent)", round(err_rate, 6), p.max_error_rate, _pf(err_rate <= p.max_error_rate))
    v.add("p99 drift (last quarter / first quarter)", round(drift, 3), p.max_p99_drift, _pf(drift <= p.max_p99_drift))
    before, after = idle
    for name in ("triton", "haproxy"):
        g = after[f"{name}_rss"] - before[f"{name}_rss"]
        v.add(
            f"{name} RSS growth, idle after vs before (MiB)",
            round(g, 1),
            p.max_rss_growth_mib,
            _pf(g <= p.max_rss_growth_mib),
        )
        f = int(after[f"{name}_fds"] - before[f"{name}_fds"])
        v.add(f"{name} open fds growth, idle after vs before", f, p.max_fd_growth, _pf(f <= p.max_fd_growth))
    v.add("arrivals not sent (generator's in-flight cap)", run.not_sent, 0, _pf(run.not_sent == 0))
    v.add("tritonserver restarts", restarts, 0, _pf(restarts == 0))
    achieved = sent / run.wall_s if run.wall_s else 0.0
    return Output(
        tables=[v, w],
        series=[lat, mem, fds],
        notes=[
            f"offered {p.rate:g} req/s for {p.duration_s:g} s through HAProxy into tritonserver (dynamic batching on); "
            f"sent {achieved:.1f} req/s on average; the generator spent {run.cpu_us_per_request:.0f} us of its own CPU "
            "per request",
            "host shared (2 cores, other agents): latency windows include their load (host_cpu column)",
            f"idle after: read {after.get('settle_s', 1.0):g} s after the run's last answer (up to "
            f"{p.idle_settle_s:g} s, until each server's open fds were back within {p.max_fd_growth}: HAProxy closes "
            "its pooled idle server connections on its pool-purge-delay ticks)",
        ],
    )


def _fds_back(before: dict[str, float], now: dict[str, float], max_growth: int) -> bool:
    """Every server's open fds within max_growth of what it had before the run."""
    names = [k for k in before if k.endswith("_fds")]
    return all(now[k] - before[k] <= max_growth for k in names)


def _pf(ok: bool) -> str:
    return "PASS" if ok else "FAIL"
