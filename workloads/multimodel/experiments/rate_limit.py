"""Triton's rate limiter (`--rate-limit=execution_count`): two models sharing one global resource, for fairness
and instance priorities (d18.e5, d60.e1, d60.e4), and as a global cap on executions, hence on QPS (d60.e3).

The models hold their instance for a fixed time per execution (workloads/multimodel/backend/fixed_cost.py), so the
limiter, not the 2-core host, decides what runs: the cap a resource count implies is known in advance.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import Field, Strict

from ailab.contract import Context, Output, Params, Table
from workloads.multimodel.experiments import AutoComplete, server_args

Seconds = Annotated[float, Strict(), Field(gt=0, le=600, description="measured window per phase, s")]
Conc = Annotated[int, Strict(), Field(ge=1, le=512)]
Warmup = Annotated[float, Strict(), Field(ge=0.1, le=60, description="unmeasured lead-in per stream, s")]
Prio = Annotated[int, Strict(), Field(ge=1, le=100)]
WarmRequests = Annotated[
    int,
    Strict(),
    Field(
        ge=0,
        le=1000,
        description="requests to each model, one at a time, before the streams start (0: the streams' own warm-up "
        "alone, which reaches every instance too: tens of executions each)",
    ),
]
RESOURCE = "R"


def _specs(delay_ms: float, instances: int, priorities: tuple[int, ...], names: tuple[str, ...]) -> list:
    from workloads.multimodel.models import fixed_cost
    from workloads.serving.modelspec import RateLimiter

    return [
        fixed_cost(n, delay_ms, count=instances,
                   rate_limiter=RateLimiter({RESOURCE: 1}, priority=pr, global_resources=(RESOURCE,)))
        for n, pr in zip(names, priorities, strict=True)
    ]  # fmt: skip


def _phase(
    ctx: Context,
    specs: list,
    limit: int | None,
    concurrency: list[int],
    duration_s: float,
    tag: str,
    warmup_s: float,
    auto_complete_config: bool,
    warm_requests: int,
) -> list:
    from workloads.multimodel import drive
    from workloads.serving import harness
    from workloads.serving.modelspec import rate_limit_args

    args = server_args(auto_complete_config, rate_limit_args(specs, {RESOURCE: limit}) if limit is not None else [])
    with harness.serve(ctx, specs, workdir=ctx.workdir / tag, args=args, warm_requests=warm_requests) as srv:
        streams = [drive.stream(srv, s.name, concurrency=c, warmup_s=warmup_s, duration_s=duration_s)
                   for s, c in zip(specs, concurrency, strict=True)]  # fmt: skip
        return drive.together(streams)


class FairnessParams(Params):
    delay_ms: Annotated[float, Strict(), Field(gt=0, le=1000, description="time of one execution, ms")] = 20.0
    instances: Annotated[int, Strict(), Field(ge=1, le=8, description="CPU instances per model")] = 2
    resource_count: Annotated[int, Strict(), Field(ge=1, le=64, description="--rate-limit-resource R:<n>")] = 2
    concurrency: Annotated[list[Conc], Field(min_length=2, max_length=2)] = Field(
        default=[32, 4], description="closed-loop requests in flight on model a, model b"
    )
    priorities: Annotated[list[Annotated[list[Prio], Field(min_length=2, max_length=2)]], Field(min_length=1)] = Field(
        default=[[1, 1], [1, 2]], description="rate-limiter priority of a's and b's instances, one phase each"
    )
    limiter_off_phase: bool = True
    duration_s: Seconds = 8.0
    warmup_s: Warmup = 1.5
    warm_requests: WarmRequests = 20
    auto_complete_config: AutoComplete = True


def fairness(ctx: Context, p: FairnessParams) -> Output:
    """Model a flooded, model b light, both sharing a global resource: throughput share, latency and queue time per
    model without the limiter, with it at equal priorities and with b's instances at a lower priority."""
    from workloads.multimodel import drive
    from workloads.serving.common import errors, host_note, lat
    from workloads.serving.harness import warm_count

    at_start = host_note()
    names = ("a", "b")
    t = Table.of(
        "per_model",
        [("phase", ""), ("model", ""), ("in flight", ""), ("instance priority", ""), ("served", "req/s"),
         ("share", "%"), ("p50", "ms"), ("p99", "ms"), ("server queue", "ms/req"), ("errors", "")],
        caption=f"two fixed-cost models ({p.delay_ms:g} ms an execution, {p.instances} instances each, every "
        f"execution holds global resource {RESOURCE}:1; the limiter grants {p.resource_count}); lab load "
        f"generator, gRPC closed loop, {p.duration_s:g} s per phase, both streams at once",
    )  # fmt: skip
    summary = Table.of(
        "fairness",
        [("phase", ""), ("total served", "req/s"), ("a / b served", "x"), ("expected a / b", "x"),
         ("Jain index", ""), ("b p99 / a p99", "x")],
        caption="expected a / b: without the limiter each model has its own instances, so each is served as its "
        "concurrency allows; with it, both saturate the shared resource and Triton gives instances scheduling "
        "chances in inverse proportion to their priority (priority 2 gets half the chances of 1)",
    )  # fmt: skip
    phases: list[tuple[str, int | None, tuple[int, int]]] = []
    if p.limiter_off_phase:
        phases.append(("limiter off", None, (1, 1)))
    phases += [(f"limiter on, priorities {a}:{b}", p.resource_count, (a, b)) for a, b in p.priorities]
    cap = 1000.0 / p.delay_ms  # executions per second one instance can do
    for i, (name, limit, prio) in enumerate(phases):
        specs = _specs(p.delay_ms, p.instances, prio, names)
        res = _phase(ctx, specs, limit, list(p.concurrency), p.duration_s, f"phase{i}", p.warmup_s,
                     p.auto_complete_config, p.warm_requests)  # fmt: skip
        total = sum(r.throughput_rps for r in res)
        for m, r, c, pr in zip(names, res, p.concurrency, prio, strict=True):
            t.add(name, m, c, pr if limit is not None else "-", round(r.throughput_rps, 1),
                  round(100 * r.throughput_rps / total, 1) if total else float("nan"), lat(r, "p50"), lat(r, "p99"),
                  round(r.server.get("queue_us", 0.0) / 1e3, 2), errors(r))  # fmt: skip
        a, b = res
        if limit is None:
            exp = min(p.concurrency[0], p.instances) * cap / (min(p.concurrency[1], p.instances) * cap)
        else:
            exp = prio[1] / prio[0]
        summary.add(name, round(total, 1), round(a.throughput_rps / b.throughput_rps, 2) if b.throughput_rps else
                    float("nan"), round(exp, 2), round(drive.jain([a.throughput_rps, b.throughput_rps]), 3),
                    round(b.latency_ms["p99"] / a.latency_ms["p99"], 2))  # fmt: skip
        ctx.log(f"{name}: a {a.throughput_rps:.1f} b {b.throughput_rps:.1f} req/s")
    n = warm_count(ctx, p.warm_requests)
    warmed = f"the same {n} warm-up requests each" if n else "no warm-up requests"
    notes = [
        at_start,
        "Triton's rate limiter hands resources to model instances, not to requests: a flooded model cannot take "
        "more than its instances' share of the resource however many requests it queues, which is what keeps the "
        "light model's latency bounded. The server flags come from the same specs "
        "(workloads/serving/modelspec.py rate_limit_args: --rate-limit=execution_count "
        f"--rate-limit-resource={RESOURCE}:{p.resource_count}).",
        "The models' executions wait instead of computing (a stand-in for a GPU kernel of known duration), so "
        "the scheduler's decisions are measured, not the 2-core host's CPU contention.",
        f"Each phase runs on a fresh server whose models got {warmed} before both streams started at once: "
        "Triton 2.51 picks the waiting instance with the smallest executions-so-far x priority (rate_limiter.cc "
        "ScaledPriority), so equal histories make the shares follow the priorities from the start (d60.e5 shows what "
        "an unequal history does).",
    ]
    return Output(tables=[summary, t], notes=notes)


class GlobalCapParams(Params):
    delay_ms: Annotated[float, Strict(), Field(gt=0, le=1000, description="time of one execution, ms")] = 50.0
    models: Annotated[int, Strict(), Field(ge=1, le=8)] = 2
    instances: Annotated[int, Strict(), Field(ge=1, le=16, description="CPU instances per model")] = 4
    resource_count: Annotated[int, Strict(), Field(ge=1, le=64, description="--rate-limit-resource R:<n>")] = 4
    concurrency: Annotated[int, Strict(), Field(ge=1, le=512, description="in flight per model")] = 16
    tolerance: Annotated[float, Strict(), Field(gt=0, lt=1)] = 0.10
    duration_s: Seconds = 10.0
    warmup_s: Warmup = 1.5
    warm_requests: WarmRequests = 20
    auto_complete_config: AutoComplete = True


def global_cap(ctx: Context, p: GlobalCapParams) -> Output:
    """Every model's instances share one global resource: the limiter caps concurrent executions at its count,
    hence the global QPS at count / execution time; measured with and without the limiter."""
    from workloads.serving.common import errors, host_note, lat

    at_start = host_note()
    names = tuple(f"m{i}" for i in range(p.models))
    nominal = p.resource_count * 1000.0 / p.delay_ms
    free = p.models * min(p.instances, p.concurrency) * 1000.0 / p.delay_ms
    t = Table.of(
        "per_model",
        [("phase", ""), ("model", ""), ("served", "req/s"), ("p50", "ms"), ("p99", "ms"),
         ("server queue", "ms/req"), ("server compute", "ms/req"), ("errors", "")],
        caption=f"{p.models} fixed-cost models x {p.instances} instances, {p.delay_ms:g} ms an execution, every "
        f"execution holds global resource {RESOURCE}:1; lab load generator, gRPC closed loop, {p.concurrency} in "
        f"flight per model, {p.duration_s:g} s, all models at once",
    )  # fmt: skip
    cap = Table.of(
        "global_cap",
        [("phase", ""), ("global served", "req/s"), ("cap", "req/s"), ("served / cap", "x"),
         ("effective cap", "req/s"), (f"within ±{100 * p.tolerance:g} % of cap", "")],
        caption=f"cap = resource count / execution time = {p.resource_count} x 1000 / {p.delay_ms:g}; without "
        f"the limiter the bound is every instance busy ({free:g} req/s); effective cap = resource count / the "
        "execution time Triton measured (nv_inference_compute_*_duration_us per request), i.e. with the python "
        "backend's per-execution overhead",
    )  # fmt: skip
    for i, (name, limit) in enumerate((("limiter off", None), ("limiter on", p.resource_count))):
        specs = _specs(p.delay_ms, p.instances, tuple(1 for _ in names), names)
        res = _phase(ctx, specs, limit, [p.concurrency] * p.models, p.duration_s, f"cap{i}", p.warmup_s,
                     p.auto_complete_config, p.warm_requests)  # fmt: skip
        total = sum(r.throughput_rps for r in res)
        for m, r in zip(names, res, strict=True):
            t.add(name, m, round(r.throughput_rps, 1), lat(r, "p50"), lat(r, "p99"),
                  round(r.server.get("queue_us", 0.0) / 1e3, 2), round(r.server.get("compute_us", 0.0) / 1e3, 2),
                  errors(r))  # fmt: skip
        exec_ms = sum(r.server.get("compute_us", 0.0) for r in res) / len(res) / 1e3
        bound = nominal if limit is not None else free
        effective = (limit if limit is not None else p.models * p.instances) * 1000.0 / exec_ms if exec_ms else 0.0
        ok = abs(total / bound - 1) <= p.tolerance
        cap.add(name, round(total, 1), round(bound, 1), round(total / bound, 3), round(effective, 1),
                "MET" if ok else "NOT MET")  # fmt: skip
    notes = [
        at_start,
        "Triton's rate limiter counts executions, not requests: with one request per execution (no dynamic "
        "batching here) and a fixed execution time, a resource count of N caps the whole server at N / execution "
        "time requests per second, whatever the number of models or instances. With dynamic batching the same "
        "limit caps executions, and QPS grows with the batch size.",
        "'effective cap' shows how far the python backend's per-execution overhead moves the cap from the nominal "
        "one; the MET/NOT MET verdict compares with the nominal cap.",
    ]
    return Output(tables=[cap, t], notes=notes)
