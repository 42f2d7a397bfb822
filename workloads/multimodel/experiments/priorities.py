"""d60.e2: dynamic-batcher priority levels under overload. A flood of default-priority (low) requests keeps one
model's queue full; inside that one flood a probe stream sends requests at priority 1 (high), then, as the control,
at the flood's level.

Both are the lab's load generator over gRPC: the flood sends no priority (the model's `default_priority_level`), the
probe sets Triton's `priority` request parameter (LoadSpec.priority). Its percentiles are exact, over every probe
request of its measured window.
"""

from __future__ import annotations

import threading
import time
from typing import Annotated, Any, Literal

from pydantic import Field, Strict

from ailab.contract import Context, Output, Params, Table
from workloads.multimodel.experiments import AutoComplete, server_args

Seconds = Annotated[float, Strict(), Field(gt=0, le=600)]


def _run_grpc_aio(spec: Any) -> Any:
    """One load run sent through grpc.aio (fastclient.GrpcLoadClient) on asyncio's own loop."""
    import asyncio

    from workloads.serving import loadgen
    from workloads.serving.fastclient import GrpcLoadClient

    async def go() -> Any:
        return await loadgen.run_async(spec, GrpcLoadClient(spec.url, timeout_s=spec.timeout_s))

    return asyncio.run(go())


def _run_default(spec: Any) -> Any:
    from workloads.serving import loadgen

    return loadgen.run(spec)


# what sends the requests: the generator's own client (raw HTTP/2 on uvloop) or grpc.aio (asyncio)
CLIENTS = {"generator": ("lab generator (raw HTTP/2)", _run_default), "grpc_aio": ("grpc.aio", _run_grpc_aio)}
ClientName = Literal["generator", "grpc_aio"]
LIGHT = (("prio", 2), ("plain", 0))  # the light-load check's models and their priority_levels


class PriorityParams(Params):
    delay_ms: Annotated[float, Strict(), Field(gt=0, le=1000, description="time of one execution, ms")] = 10.0
    max_batch_size: Annotated[int, Strict(), Field(ge=1, le=64)] = 4
    flood_concurrency: Annotated[int, Strict(), Field(ge=1, le=1024, description="low-priority in flight")] = 48
    probe_concurrency: Annotated[int, Strict(), Field(ge=1, le=64, description="probe requests in flight")] = 2
    probe_requests: Annotated[int, Strict(), Field(ge=10, le=10_000, description="measured probe requests")] = 180
    probe_warmup_s: Annotated[float, Strict(), Field(ge=0, le=30)] = Field(
        default=0.5, description="the probe's unmeasured lead-in (at its priority, inside the flood), s"
    )
    flood_s: Seconds = Field(default=45.0, description="flood length; both probes must finish inside it")
    stall_check_s: Seconds = Field(default=5.0, description="light-load run with and without priority levels")
    stall_warmup_s: Annotated[float, Strict(), Field(ge=0.1, le=30)] = Field(
        default=1.0, description="unmeasured lead-in of each light-load run (the server is warm by then)"
    )
    flood_warmup_s: Annotated[float, Strict(), Field(ge=0.5, le=30)] = Field(
        default=2.0, description="flood time before its measured window; the probe starts probe_delay_s after it"
    )
    probe_delay_s: Annotated[float, Strict(), Field(ge=0.1, le=30)] = Field(
        default=1.0, description="from the flood's measured window's start to the probe's start (the queue is full)"
    )
    clients: Annotated[list[ClientName], Field(min_length=1, max_length=2)] = Field(
        default=["generator", "grpc_aio"],
        description="who sends flood and probes, one flood each: the lab generator's client, grpc.aio (the light-load "
        "check always runs both)",
    )
    auto_complete_config: AutoComplete = True


def _model(name: str, p: PriorityParams, levels: int) -> object:
    from workloads.multimodel.models import fixed_cost
    from workloads.serving.modelspec import DynamicBatching

    db = DynamicBatching(preferred_batch_sizes=(p.max_batch_size,), priority_levels=levels,
                         default_priority_level=levels)  # fmt: skip
    return fixed_cost(name, p.delay_ms, count=1, max_batch_size=p.max_batch_size, dynamic_batching=db)


def priority_levels(ctx: Context, p: PriorityParams) -> Output:
    """High- vs low-priority latency under overload, as a p99 ratio from one server, plus the flood's own latency
    while each probe ran."""
    import numpy as np

    from workloads.multimodel import drive
    from workloads.serving import harness, loadgen
    from workloads.serving.common import errors, host_note, lat
    from workloads.serving.stats import percentile

    at_start = host_note()
    specs = [_model("prio", p, 2), _model("plain", p, 0)]
    t = Table.of(
        "probe_latency",
        [("client", ""), ("probe priority", ""), ("probe p50", "ms"), ("probe p90", "ms"), ("probe p99", "ms"),
         ("probe served", "req/s"), ("flood p50 meanwhile", "ms"),
         ("flood p99 meanwhile", "ms"), ("flood served", "req/s"), ("probe inside flood", ""), ("flood errors", ""),
         ("probe errors", "")],
        caption=f"model: one instance, {p.delay_ms:g} ms an execution, max_batch_size {p.max_batch_size}, "
        f"preferred_batch_size {p.max_batch_size}, priority_levels 2, default_priority_level 2; flood = "
        f"{p.flood_concurrency} in flight without a priority (level 2); probe = {p.probe_concurrency} in flight, "
        f"request parameter priority N, {p.probe_requests} measured requests after a {p.probe_warmup_s:g} s lead-in, "
        "the two probes one after the other inside one flood, flood and probes sent by the row's client; "
        "'meanwhile' = flood requests sent while the probe ran",
    )  # fmt: skip
    got: dict[tuple[str, int], loadgen.LoadResult] = {}
    with harness.serve(ctx, specs, args=server_args(p.auto_complete_config)) as srv:
        for key in p.clients:
            client, run = CLIENTS[key]
            # one flood; inside it the probe at priority 1, then the control at the flood's own level 2: both see
            # the same full queue of the same server
            holder: dict[str, loadgen.LoadResult] = {}
            spec = drive.stream(srv, "prio", concurrency=p.flood_concurrency, warmup_s=p.flood_warmup_s,
                                duration_s=p.flood_s, timeline=True)  # fmt: skip
            th = threading.Thread(target=lambda s=spec, r=run, h=holder: h.setdefault("r", r(s)), daemon=True)
            th.start()
            time.sleep(p.flood_warmup_s + p.probe_delay_s)  # the flood's warm-up: its queue is full before the probe
            spans: dict[int, tuple[float, float]] = {}
            try:
                for level in (1, 2):
                    t0 = time.perf_counter()
                    probe = drive.stream(srv, "prio", concurrency=p.probe_concurrency, priority=level,
                                         warmup_s=p.probe_warmup_s, requests=p.probe_requests)  # fmt: skip
                    got[key, level] = run(probe)
                    spans[level] = (t0, time.perf_counter())
            finally:
                th.join()
            flood = holder["r"]
            for level, (t0, t1) in spans.items():
                probe = got[key, level]
                lo, hi = t0 - flood.window_start, t1 - flood.window_start
                during = np.sort([ms for (ts, ms, err) in flood.timeline if lo <= ts <= hi and not err])
                inside = t1 <= flood.window_start + flood.window_s
                t.add(client, level, lat(probe, "p50"), lat(probe, "p90"), lat(probe, "p99"),
                      round(probe.throughput_rps, 1), round(percentile(during, 50), 2),
                      round(percentile(during, 99), 2), round(flood.throughput_rps, 1),
                      "yes" if inside else f"no: probe ended {t1 - flood.window_start - flood.window_s:.1f} s after",
                      errors(flood), errors(probe))  # fmt: skip
                ctx.log(f"{client}, priority {level}: probe p99 {lat(probe, 'p99'):.1f} ms")
        stall = Table.of(
            "light_load",
            [("priority_levels", ""), ("client", ""), ("p50", "ms"), ("p99", "ms"), ("p99.9", "ms"), ("max", "ms"),
             ("requests over 250 ms", ""), ("served", "req/s")],
            caption=f"the same model with and without priority levels at light load (2 in flight, {p.stall_check_s:g} "
            "s, no priority sent), both at once on the same server, sent by the lab generator's client and by "
            "grpc.aio (one client after the other), to show whether the priority queue itself delays some requests "
            "and whether that depends on how soon a client sends its next request",
        )  # fmt: skip
        light: dict[tuple[int, str], loadgen.LoadResult] = {}
        for client, run in CLIENTS.values():
            # the run with priority levels and its control without them side by side: the same seconds and host load
            runs = drive.together([drive.stream(srv, name, concurrency=2, warmup_s=p.stall_warmup_s,
                                                duration_s=p.stall_check_s) for name, _ in LIGHT], run=run)  # fmt: skip
            light.update({(levels, client): r for (_, levels), r in zip(LIGHT, runs, strict=True)})
        slow_count: dict[tuple[int, str], tuple[int, int]] = {}
        for (levels, client), r in sorted(light.items(), key=lambda kv: -kv[0][0]):  # with levels first, as before
            slow = sum(1 for ms in r.samples_ms if ms > 250.0)
            slow_count[levels, client] = (slow, len(r.samples_ms))
            stall.add(levels, client, lat(r, "p50"), lat(r, "p99"), lat(r, "p99.9"), lat(r, "max"), slow,
                      round(r.throughput_rps, 1))  # fmt: skip
    ratio = Table.of(
        "priority_effect",
        [("client", ""), ("high p99 / low p99", "x"), ("high p90 / low p90", "x"), ("high p50 / low p50", "x"),
         ("high p99", "ms"), ("low p99", "ms")],
        caption="the probe's percentiles at priority 1 over its percentiles at the flood's level 2, same server, "
        "same flood (exact percentiles over every probe request of its window)",
    )  # fmt: skip
    for key in p.clients:
        hi, lo = got[key, 1].latency_ms, got[key, 2].latency_ms
        ratio.add(CLIENTS[key][0], *(round(hi[q] / lo[q], 3) if lo[q] else float("nan") for q in ("p99", "p90", "p50")),
                  round(hi["p99"], 2), round(lo["p99"], 2))  # fmt: skip
    notes = [
        at_start,
        "With priority levels the dynamic batcher keeps one queue per level and forms each batch from the highest "
        "level first: a high-priority request waits for the execution in progress and at most a batch of its own "
        "level, not for the flood's queue.",
        "Light-load check, requests over 250 ms (same model, same load, both at once): "
        + "; ".join(
            f"{'with' if lv else 'without'} priority levels, {client}: {n} of {of}"
            for (lv, client), (n, of) in slow_count.items()
        )
        + ". The lab generator sends its next request within tens of µs of an answer, grpc.aio a few tenths of a ms "
        "later; the stalls last about 0.5 s (the 'max' column), the length of a batcher that missed the new request "
        "and woke on a timer. Stalls like these in the priority queue also land in both probes and in the flood, so "
        "the probes' percentiles say as much about them as about the priority effect where they are frequent.",
    ]
    return Output(tables=[ratio, t, stall], notes=notes)
