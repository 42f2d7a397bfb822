"""Open-loop QPS sweep and its knee (d07.e1): Poisson arrivals at growing targets until a step breaches its
latency limit or the throughput stops following the target (the plan and the verdict: workloads/serving/knee.py)."""

from __future__ import annotations

from typing import Annotated, Literal, Self

from pydantic import Field, model_validator

from ailab.contract import Column, Context, Output, Params, Series, Table
from workloads.serving.experiments import Int, Num, Protocol, Seconds


class QpsSweepParams(Params):
    qps: Annotated[list[Annotated[Num, Field(gt=0, le=100_000)]], Field(min_length=1)] = Field(
        default=[100.0, 200.0, 400.0, 600.0, 800.0, 1000.0, 1500.0, 2000.0],
        description="listed targets (req/s, increasing); after them the target grows by `growth`",
    )
    duration_s: Seconds = 4.0
    protocol: Protocol = "grpc"
    latency: Literal["p50", "p95", "p99"] = Field(
        default="p50",
        description="the percentile the latency limit holds (p50: on a shared host a few-second window's p99 "
        "measures other processes' scheduling stalls; every request queues at the knee, so the median rises)",
    )
    knee_factor: Annotated[Num, Field(gt=1, le=100)] = Field(
        default=2.0, description="latency limit: the judged percentile <= knee_factor x the first step's"
    )
    limit_ms: Annotated[Num, Field(gt=0)] | None = Field(
        default=None, description="an absolute limit on the judged percentile, ms (the lower limit applies)"
    )
    growth: Annotated[Num, Field(ge=1.05, le=4)] = Field(
        default=1.25, description="after the listed targets, each next target = previous x growth"
    )
    max_qps: Annotated[Num, Field(gt=0, le=100_000)] = Field(
        default=20_000.0, description="the sweep's bound: no target above this"
    )
    max_steps: Annotated[Int, Field(ge=1, le=100)] = Field(
        default=30, description="the sweep's bound: at most this many distinct targets"
    )
    confirm: bool = Field(default=True, description="measure a breaching step again; only a repeated breach counts")

    @model_validator(mode="after")
    def _increasing_and_bounded(self) -> Self:
        if any(b <= a for a, b in zip(self.qps, self.qps[1:], strict=False)):
            raise ValueError(f"qps {self.qps}: the listed targets must be strictly increasing")
        if self.qps[-1] > self.max_qps:
            raise ValueError(f"max_qps {self.max_qps:g} is below the last listed target {self.qps[-1]:g}")
        return self


def qps_sweep(ctx: Context, p: QpsSweepParams) -> Output:
    """Open-loop Poisson load from the first target up until the knee: p50/p95/p99, queue time per step, the knee."""
    import os

    from workloads.serving import harness, knee
    from workloads.serving.common import errors, host_note, lat, load, variant

    load_at_start, cores = os.getloadavg()[0], os.cpu_count() or 1
    at_start = host_note()

    t = Table.of(
        "qps_sweep",
        [
            ("target", "req/s"),
            ("achieved", "req/s"),
            ("throughput", "req/s"),
            ("p50", "ms"),
            ("p95", "ms"),
            ("p99", "ms"),
            (f"{p.latency} limit", "ms"),
            ("server queue", "ms/req"),
            ("avg batch", ""),
            ("send lag p99", "ms"),
            ("errors", ""),
            ("verdict", ""),
            ("step", ""),
        ],
        caption=f"MLP with dynamic batching, {p.protocol}, Poisson arrivals, {p.duration_s:g} s per step after 1 s "
        f"warm-up; listed targets, then x{p.growth:g} per step up to {p.max_qps:g} req/s or {p.max_steps} steps, "
        "until a step breaches",
    )
    s = Series("latency_vs_qps", x=Column("target", "req/s"), y=Column("latency", "ms"))
    sweep = knee.Sweep(
        listed=p.qps,
        knee_factor=p.knee_factor,
        limit_ms_abs=p.limit_ms,
        latency=p.latency,
        growth=p.growth,
        max_qps=p.max_qps,
        max_steps=p.max_steps,
        confirm=p.confirm,
    )
    with harness.serve(ctx, [variant("mlp", preferred=(8, 16), delay_us=1000)]) as srv:
        while (q := sweep.next_target()) is not None:
            repeat = bool(sweep.steps) and sweep.steps[-1].target == q
            res, _ = load(
                srv, "mlp", protocol=p.protocol, mode="open", qps=q, warmup_s=1.0, duration_s=p.duration_s, timeout_s=30
            )
            lat_ms = res.latency_ms[p.latency]
            step = knee.Step(q, res.achieved_qps, res.throughput_rps, lat_ms, res.window_s, res.verdict)
            sweep.add(step)
            why = knee.breach(step, sweep.limit_ms, p.latency)
            queue = res.server.get("queue_us", 0.0) / 1e3
            t.add(
                q,
                round(res.achieved_qps, 1),
                round(res.throughput_rps, 1),
                lat(res, "p50"),
                lat(res, "p95"),
                lat(res, "p99"),
                round(sweep.limit_ms, 3),
                round(queue, 3),
                round(res.server.get("avg_batch", 0), 2),
                round(res.send_lag_ms.get("p99", 0), 2),
                errors(res),
                res.verdict,
                ("re-measured: " if repeat else "") + (f"breach: {why}" if why else "met"),
            )
            if not repeat:
                for pct in ("p50", "p95", "p99"):
                    s.point(pct, q, res.latency_ms[pct])
                s.point("server queue", q, queue)
            ctx.log(f"{q:.0f} QPS: {res.throughput_rps:.0f} req/s, p99 {res.latency_ms['p99']:.1f} ms ({res.verdict})")
    notes = [at_start, sweep.outcome().note(p.knee_factor)]
    if load_at_start > cores:
        notes.append(
            f"The host was oversubscribed when the sweep began (load average {load_at_start:.1f} on {cores} cores): "
            "the generator and tritonserver shared the CPU with other processes, so the knee is this host's under "
            "that contention, not the server's alone; compare runs only by their recorded load."
        )
    return Output(tables=[t], series=[s], notes=notes)
