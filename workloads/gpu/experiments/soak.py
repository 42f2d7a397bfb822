"""A long load on a model on the GPU (d49.e4): one process sends a closed loop of requests for `duration_s` and
summarises every `window_s` window as it goes (requests, errors, exact p50/p99, the memory PyTorch holds, its RSS and
open file descriptors), while NVML's memory in use is read beside it; the report plots them over time and states
PASS/FAIL against thresholds given as parameters (the same checks as the gateway's soak, docs/gateway.md).

A substitute for a GPU inference service under a long load test: Triton with GPU backends cannot be brought to the
GPU machine, so the service is the worker process itself (workloads/gpu/worker.py: host-to-device copy, forward,
result back); the windows are cut inside it, so the run keeps no per-request samples that would grow its own RSS.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import Field, model_validator

from ailab.contract import Column, Context, Output, Params, Series, Skip, Substitute, Table
from workloads.gpu.experiments.instances import ModelShape


class GpuSoakParams(Params):
    model: ModelShape = Field(
        default=ModelShape(dim=4096, layers=8, batch=64), description="the model under load (FP16 on GPU 0)"
    )
    duration_s: Annotated[float, Field(ge=10, le=7200)] = Field(
        default=480.0, description="the whole run, s (8 minutes: one call to the lent GPU machine lasts 10 at most)"
    )
    window_s: Annotated[float, Field(ge=1, le=300)] = Field(default=10.0, description="reporting window, s")
    max_error_rate: Annotated[float, Field(ge=0, le=1)] = Field(default=0.0, description="failed / sent, whole run")
    max_p99_drift: Annotated[float, Field(ge=1, le=100)] = Field(
        default=1.5, description="median p99 of the last quarter of the windows / of the first quarter"
    )
    max_gpu_growth_mib: Annotated[float, Field(ge=0, le=100_000)] = Field(
        default=64.0, description="growth of the memory PyTorch reserved, last window vs first, MiB"
    )
    max_rss_growth_mib: Annotated[float, Field(ge=0, le=100_000)] = Field(
        default=64.0, description="growth of the process' RSS, last window vs first, MiB"
    )
    max_fd_growth: Annotated[int, Field(ge=0, le=100_000)] = Field(
        default=0, description="growth of the process' open file descriptors, last window vs first"
    )

    @model_validator(mode="after")
    def _windows(self) -> GpuSoakParams:
        if self.duration_s < 4 * self.window_s:
            raise ValueError(
                f"duration_s {self.duration_s:g} with window_s {self.window_s:g}: allowed at least 4 windows (the "
                "drift compares the first quarter of them with the last)"
            )
        return self


def _pf(ok: bool) -> str:
    return "PASS" if ok else "FAIL"


def gpu_soak(ctx: Context, p: GpuSoakParams) -> Output:
    """One worker under a closed loop for duration_s: per-window latency, errors and memory; PASS/FAIL verdicts."""
    if ctx.device != "cuda":
        raise Skip("needs an NVIDIA GPU: the model under load is on GPU 0")
    from workloads.cluster.timeline import Window, drift
    from workloads.gpu.clients import NvmlSampler, run_clients

    s = p.model
    cfg = {"dim": s.dim, "layers": s.layers, "batch": s.batch, "seconds": p.duration_s, "window_s": p.window_s}
    with NvmlSampler(1.0) as nvml:
        run = run_clients(1, cfg, timeout_s=180 + 1.2 * p.duration_s)
    out = run.per_client[0]
    rows = out["windows"]
    t = Table.of(
        "windows",
        [("from", "s"), ("requests", ""), ("errors", ""), ("served", "req/s"), ("p50", "ms"), ("p99", "ms"),
         ("reserved by PyTorch", "MiB"), ("allocated", "MiB"), ("RSS", "MiB"), ("open fds", "")],
        caption=f"{s.layers} x Linear({s.dim}, {s.dim}) + ReLU in FP16, batch {s.batch}, one request in flight "
        f"(host-to-device copy, forward, result back); windows of {p.window_s:g} s cut inside the worker, exact "
        "nearest-rank percentiles of the window's successful requests, memory, RSS and fds read at the window's end",
    )  # fmt: skip
    for w in rows:
        t.add(round(w["start_s"], 1), w["requests"], w["errors"], round(w["ok_rps"], 1), round(w["p50_ms"], 4),
              round(w["p99_ms"], 4), round(w["reserved_mib"], 1), round(w["allocated_mib"], 1),
              round(w["rss_mib"], 1), w["fds"])  # fmt: skip
    wins = [Window(w["start_s"], w["requests"], w["errors"], w["p50_ms"], w["p99_ms"], w["ok_rps"]) for w in rows]
    sent = sum(w["requests"] for w in rows)
    failed = sum(w["errors"] for w in rows)
    rate = failed / sent if sent else float("nan")
    d = drift(wins)
    first, last = rows[0], rows[-1]
    growth = {k: last[k] - first[k] for k in ("reserved_mib", "rss_mib", "fds")}
    v = Table.of("verdict", [("check", ""), ("value", ""), ("threshold", ""), ("result", "")])
    v.add("requests", sent, "> 0", _pf(sent > 0))
    v.add("error rate (failed / sent)", round(rate, 6), p.max_error_rate, _pf(rate <= p.max_error_rate))
    v.add("p99 drift (last quarter / first quarter)", round(d, 3), p.max_p99_drift, _pf(d <= p.max_p99_drift))
    v.add("PyTorch reserved growth, MiB", round(growth["reserved_mib"], 1), p.max_gpu_growth_mib,
          _pf(growth["reserved_mib"] <= p.max_gpu_growth_mib))  # fmt: skip
    v.add("RSS growth, MiB", round(growth["rss_mib"], 1), p.max_rss_growth_mib,
          _pf(growth["rss_mib"] <= p.max_rss_growth_mib))  # fmt: skip
    v.add("open fd growth", growth["fds"], p.max_fd_growth, _pf(growth["fds"] <= p.max_fd_growth))
    t0 = run.started_at
    lat = Series("latency per window", Column("time since start", "s"), Column("latency", "ms"))
    mem = Series("memory over time", Column("time since start", "s"), Column("memory", "MiB"))
    for w in rows:
        lat.point("p50", w["start_s"], round(w["p50_ms"], 4))
        lat.point("p99", w["start_s"], round(w["p99_ms"], 4))
        mem.point("reserved by PyTorch", w["start_s"], round(w["reserved_mib"], 1))
        mem.point("process RSS", w["start_s"], round(w["rss_mib"], 1))
    for ts, used, _util in nvml.samples:
        if t0 <= ts <= t0 + p.duration_s:
            mem.point("GPU memory in use (NVML)", round(ts - t0, 1), round(used, 1))
    failing = [r[0] for r in v.rows if r[3] == "FAIL"]
    return Output(
        tables=[v, t],
        series=[lat, mem],
        notes=[
            f"{'PASS' if not failing else 'FAIL'}: {sent} requests over {p.duration_s:g} s"
            + (f"; failing: {', '.join(failing)}" if failing else "; every check within its threshold"),
        ],
        substitute=Substitute(
            instead_of="a GPU inference service under a long load test",
            used="one process sending a closed loop of requests to a model on the GPU (host-to-device copy, forward, "
            "result back) for the whole run, its own memory, RSS and open fds read every window",
            why="Triton with GPU backends cannot be brought to the GPU machine: no registry reaches it and a call "
            "carries 64 MiB",
        ),
    )
