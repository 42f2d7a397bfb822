"""Rate limiting at the gateway (d14.e1): open-loop load above the limit, with and without HAProxy's limit.

One HAProxy, two frontends on the same Triton: `open` (no limit) and `limited` (a stick table counting admitted
requests per second; the rest answered 429 by HAProxy without reaching Triton). Each offered rate runs against
both, so the two curves come from the same server in the same run.
"""

from __future__ import annotations

import asyncio
from typing import Annotated, Self

from pydantic import Field, model_validator

from ailab.contract import Column, Context, Output, Params, Series, Table
from workloads.gateway import load
from workloads.gateway.experiments import Int, Num
from workloads.gateway.stack import gateway, limit_spec


class RateLimitParams(Params):
    limit: Annotated[Int, Field(ge=1, le=100_000)] = Field(default=150, description="admitted requests per second")
    rates: list[Annotated[Num, Field(gt=0, le=5000)]] = Field(
        default=[75.0, 150.0, 300.0, 600.0], min_length=1, description="offered load, req/s (open loop)"
    )
    duration_s: Annotated[Num, Field(ge=1, le=120)] = Field(default=5.0, description="per rate and mode, s")
    max_in_flight: Annotated[Int, Field(ge=1, le=4096)] = Field(
        default=512, description="the generator's cap on outstanding requests (arrivals beyond it are not sent)"
    )
    p99_stable_factor: Annotated[Num, Field(ge=1, le=100)] = Field(
        default=2.0, description="admitted p99 counts as stable while within this factor of the lowest rate's"
    )

    @model_validator(mode="after")
    def _above(self) -> Self:
        if max(self.rates) <= self.limit:
            raise ValueError(f"rates {self.rates}: at least one must exceed limit {self.limit} to test the limit")
        return self


def rate_limit(ctx: Context, p: RateLimitParams) -> Output:
    """Offered rate sweep against `open` and `limited`: admitted rate, 429s, admitted and refused latency."""
    t = Table.of(
        "rate_limit",
        [
            ("mode", ""),
            ("offered", "req/s"),
            ("sent", ""),
            ("admitted", "req/s"),
            ("refused_429", ""),
            ("errors", ""),
            ("not_sent", ""),
            ("admitted_p50", "ms"),
            ("admitted_p99", "ms"),
            ("refused_p50", "ms"),
            ("refused_p99", "ms"),
            ("p99_stable", ""),
            ("client_cpu", "us/req"),
            ("host_cpu", "%"),
        ],
        caption="admitted = 200 answers per second of the run; refused = HAProxy's 429; errors = anything else "
        "(timeouts, connection errors, 5xx); not_sent = arrivals dropped by the generator's in-flight cap; "
        f"p99_stable: admitted p99 within {p.p99_stable_factor}x of the same mode's lowest offered rate; "
        "host_cpu: whole-host CPU busy during the step (every process, other agents' included)",
    )
    p99 = Series("admitted_p99", x=Column("offered", "req/s"), y=Column("admitted p99", "ms"), log_y=True)
    thr = Series("admitted", x=Column("offered", "req/s"), y=Column("admitted", "req/s"))
    import psutil

    rates = sorted(p.rates)
    cpu_busy: list[float] = []
    saturated: list[str] = []
    with gateway(ctx, limit_spec(p.limit)) as gw:

        async def step(frontend: str, rate: float) -> load.Run:
            async with load.Client(gw.url(frontend)) as c:
                await load.closed_loop(c, 4, 40, 10)  # connections and model warm; 40 requests stay under any limit
                await asyncio.sleep(1.1)  # let the stick table's one-second window forget the warm-up
                psutil.cpu_percent(interval=None)  # starts the host CPU window
                run = await load.open_loop(c, rate, p.duration_s, p.max_in_flight)
                cpu_busy.append(psutil.cpu_percent(interval=None))
                return run

        for mode, frontend in (("no limit", "open"), (f"limit {p.limit}/s", "limited")):
            base = None
            for rate in rates:
                run = asyncio.run(step(frontend, rate))
                ok = [s.latency_ms for s in run.samples if s.status == 200]
                ref = [s.latency_ms for s in run.samples if s.status == 429]
                a99 = load.percentile(ok, 99)
                base = a99 if base is None else base
                t.add(
                    mode,
                    rate,
                    len(run.samples),
                    round(len(ok) / run.wall_s, 1),
                    len(ref),
                    sum(1 for s in run.samples if s.status not in (200, 429)),
                    run.not_sent,
                    round(load.percentile(ok, 50), 3),
                    round(a99, 3),
                    round(load.percentile(ref, 50), 3) if ref else None,
                    round(load.percentile(ref, 99), 3) if ref else None,
                    bool(a99 <= p.p99_stable_factor * base),
                    round(run.cpu_us_per_request, 1),
                    cpu_busy[-1],
                )
                if cpu_busy[-1] >= 90:
                    saturated.append(f"{mode} at {rate:g} req/s")
                p99.point(mode, rate, round(a99, 3))
                thr.point(mode, rate, round(len(ok) / run.wall_s, 1))
    notes = []
    if saturated:
        notes.append(
            "host CPU was at or above 90 % in: " + "; ".join(saturated) + ". There the generator, the gateway and "
            "Triton queue for the same cores, so latency (admitted and refused alike) measures the host, not the limit"
        )
    return Output(
        tables=[t],
        series=[p99, thr],
        notes=[
            *notes,
            "HAProxy counts admitted requests only (gpc0 incremented after the deny rule), so a client above the "
            "limit still gets the limit through; counting every request (http_req_rate) would refuse all of them",
            f"load generator: {load.CLIENT}, open loop on this host; host shared (2 cores, other agents): the "
            "server, the gateway and the generator compete for the same cores",
        ],
    )
