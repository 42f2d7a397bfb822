"""Per-model latency and queue-time curves from Prometheus while the load on one model steps up: the large and the
small model side by side (d18.e4), or two models behind Triton's rate limiter with different instance priorities
(d60.e5, scheduling effects). The queries are the generated Triton dashboard's own panels."""

from __future__ import annotations

import time
from typing import Annotated, Literal

from pydantic import Field, Strict

from ailab.contract import Column, Context, Output, Params, Series, Table, durations
from workloads.multimodel.experiments import AutoComplete, server_args
from workloads.serving.experiments import ScrapeInterval

PRIORITY = {"high": 1, "low": 2}  # rate_limited scenario: instance priority of each model
LATENCY_PANEL = "Average request latency (server)"
QUEUE_PANEL = "Queue vs compute time per request"


class CurvesParams(Params):
    scenario: Literal["large_small", "rate_limited"] = Field(
        default="large_small",
        description="large_small: small MLP at a fixed rate, large MLP stepped up; rate_limited: two fixed-cost "
        "models sharing one global resource (priorities 1 and 2), the second stepped up",
    )
    steady_qps: Annotated[float, Strict(), Field(gt=0, le=5000, description="open-loop rate, steady model")] = 50.0
    steady_concurrency: Annotated[int, Strict(), Field(ge=1, le=512, description="rate_limited: steady model")] = 8
    steps: Annotated[list[Annotated[int, Strict(), Field(ge=0, le=512)]], Field(min_length=1)] = Field(
        default=[0, 1, 2, 4], description="in flight on the stepped model, one step each (0 = idle)"
    )
    step_s: Annotated[float, Strict(), Field(gt=0, le=600, description="measured seconds per step")] = 10.0
    delay_ms: Annotated[float, Strict(), Field(gt=0, le=1000, description="rate_limited: ms an execution")] = 20.0
    warmup_s: Annotated[float, Strict(), Field(ge=0.1, le=60, description="unmeasured lead-in per step, s")] = 1.0
    settle: Literal["two_scrapes", "next_scrape"] = Field(
        default="two_scrapes",
        description="how each step waits for Prometheus before its panels are evaluated: a fixed two scrape intervals "
        "(what the full runs were measured with) or until a scrape taken after the step's end is in (quick)",
    )
    scrape_interval: ScrapeInterval = Field(
        default="1s",
        description="Prometheus' scrape interval (one the lab's configs allow): each step should hold at least two "
        "scrapes; the panels are evaluated over the step, at least two intervals",
    )
    auto_complete_config: AutoComplete = True


def _scenario(p: CurvesParams) -> tuple[list, list[str], str, str, dict]:
    """(specs, server args, steady model, stepped model, steady stream kwargs); the rate-limited models' instance
    priorities are 1 (high) and 2 (low)."""
    from workloads.multimodel.models import fixed_cost, large, small
    from workloads.serving.modelspec import InstanceGroup, RateLimiter, rate_limit_args

    if p.scenario == "large_small":
        specs = [small("small"), large("large", instance_groups=(InstanceGroup(count=2),))]
        return specs, [], "small", "large", {"mode": "open", "qps": p.steady_qps}
    rl = {m: RateLimiter({"R": 1}, priority=pr, global_resources=("R",)) for m, pr in PRIORITY.items()}
    specs = [fixed_cost(m, p.delay_ms, count=2, rate_limiter=rl[m]) for m in PRIORITY]
    return specs, rate_limit_args(specs, {"R": 2}), "high", "low", {"concurrency": p.steady_concurrency}


def latency_curves(ctx: Context, p: CurvesParams) -> Output:
    """Step the load on one model while the other runs steadily; Prometheus scrapes Triton every second; per step
    and over time: each model's server latency and queue time from the dashboard's panel queries, and the client's
    exact percentiles for comparison."""
    from workloads.multimodel import drive
    from workloads.multimodel.observe import evaluate, observed, panel_queries, range_by_model, settled
    from workloads.serving import metrics
    from workloads.serving.common import errors, host_note, lat

    at_start = host_note()
    scrape_s = durations.seconds(p.scrape_interval)
    specs, args, steady, stepped, steady_kw = _scenario(p)
    ((lat_q, _),) = panel_queries(LATENCY_PANEL)
    (queue_q, _), _ = panel_queries(QUEUE_PANEL)
    t = Table.of(
        "per_step",
        [("step", ""), ("model", ""), ("load", ""), ("served", "req/s"), ("client p50", "ms"), ("client p99", "ms"),
         ("server latency (Prometheus)", "ms/req"), ("server queue (Prometheus)", "ms/req"),
         ("executions so far", ""), ("executions x priority", ""), ("errors", "")],
        caption=f"Prometheus columns: the panels '{LATENCY_PANEL}' and '{QUEUE_PANEL}' of "
        f"dashboards/grafana/triton.json evaluated at the end of each step over its {p.step_s:g} s "
        f"({p.scrape_interval} scrapes); "
        "client columns: the lab load generator's exact nearest-rank percentiles of the same step",
    )  # fmt: skip
    marks: list[tuple[int, float, float]] = []
    with observed(ctx, specs, server_args(p.auto_complete_config, args), p.scrape_interval) as (srv, prom):
        t_begin = time.time()
        for i, conc in enumerate(p.steps):
            streams = [drive.stream(srv, steady, warmup_s=p.warmup_s, duration_s=p.step_s, **steady_kw)]
            if conc:
                streams.append(drive.stream(srv, stepped, concurrency=conc, warmup_s=p.warmup_s, duration_s=p.step_s))
            s0 = time.time() + drive.LEAD_S + p.warmup_s  # together() starts LEAD_S from now, then the warm-up
            res = drive.together(streams)
            s1 = time.time()
            marks.append((conc, s0, s1))
            at = settled(prom, p.settle, scrape_s)
            lat_v = evaluate(prom, lat_q, at - s0, at, scrape_s)
            queue_v = evaluate(prom, queue_q, at - s0, at, scrape_s)
            execs = {m: metrics.read(srv.metrics_url, m).exec_count for m in (steady, stepped)}
            for model, r, load in ((steady, res[0], _describe(steady_kw)), (stepped, res[1] if conc else None,
                                   f"{conc} in flight")):  # fmt: skip
                prio = PRIORITY.get(model) if p.scenario == "rate_limited" else None
                scaled = int(execs[model] * prio) if prio else "-"
                if r is None:
                    t.add(i, model, "idle", 0.0, "-", "-", "-", "-", int(execs[model]), scaled, "-")
                    continue
                t.add(i, model, load, round(r.throughput_rps, 1), lat(r, "p50"), lat(r, "p99"),
                      _ms(lat_v.get(model)), _ms(queue_v.get(model)), int(execs[model]), scaled, errors(r))  # fmt: skip
            ctx.log(f"step {i} ({stepped} x{conc}) done")
        t_end = time.time()
        lat_curves = range_by_model(prom, lat_q, t_begin, t_end)
        queue_curves = range_by_model(prom, queue_q, t_begin, t_end)
    series = []
    for title, curves in (("server latency per model", lat_curves), ("queue time per model", queue_curves)):
        s = Series(title, Column("time since start", "s"), Column(title.split(" per")[0], "ms/req"))
        for model, pts in sorted(curves.items()):
            if model in (steady, stepped):
                for x, y in pts:
                    s.point(model, x, round(y / 1e3, 3))
        series.append(s)
    steps = Table.of("steps", [("step", ""), (f"{stepped} in flight", ""), ("from", "s"), ("to", "s")],
                     caption="when each step's measured window ran, on the curves' time axis")  # fmt: skip
    for i, (conc, s0, s1) in enumerate(marks):
        steps.add(i, conc, round(s0 - t_begin, 1), round(s1 - t_begin, 1))
    notes = [at_start]
    if p.scenario == "rate_limited":
        notes.extend(
            [
                "Both models' instances need the global resource R (the server grants 2); 'high' has instance priority "
                "1, 'low' priority 2 (half the scheduling chances). Watch the queue time of each as the low-priority "
                "model's load grows: the limiter makes the two models' queues depend on each other.",
                "Triton 2.51 hands a freed resource to the waiting instance with the smallest executions-so-far x "
                "priority (RateLimiter::ModelInstance::ScaledPriority in the core's rate_limiter.cc): the ratio of two "
                "models' shares follows their priorities only once their products are level. A model that ran alone "
                "first ('high' in the first step) has a head start to repay, so right after the other one starts, the "
                "other one is served first; the 'executions x priority' column shows when the products meet.",
            ]
        )
    else:
        notes.append(
            "The small MLP's server latency next to the large MLP's growing load: both share two CPU cores, so "
            "the curves show CPU contention (on a GPU they would show SM and memory-bandwidth contention)."
        )
    return Output(tables=[t, steps], series=series, notes=notes)


def _describe(kw: dict) -> str:
    return f"{kw['qps']:g} req/s open loop" if kw.get("mode") == "open" else f"{kw['concurrency']} in flight"


def _ms(us: float | None) -> float | str:
    return round(us / 1e3, 3) if us is not None else "no data"
