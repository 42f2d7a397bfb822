"""Response caching (d05.e4): no cache vs Triton's response cache vs a client-side Redis cache on one repeating
request stream: hit rate against the stream's ideal, p50/p99, and every cached response checked byte for byte.
The stream, the Redis client path and the counters: workloads/serving/caching.py."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, field_validator

from ailab.contract import Context, Output, Params, Table
from workloads.serving.experiments import Int, Num

Mode = Literal["none", "triton", "redis"]


class CacheParams(Params):
    modes: Annotated[list[Mode], Field(min_length=1)] = Field(
        default=["none", "triton", "redis"],
        description="cache modes, starting with 'none' (the uncached run is the reference the cached outputs are "
        "checked against)",
    )
    hit_ratio: Annotated[Num, Field(ge=0, le=1)] = Field(default=0.8, description="probability of a hot input")
    pool_size: Annotated[Int, Field(ge=1, le=100_000)] = Field(default=100, description="hot inputs")
    requests: Annotated[Int, Field(ge=1, le=1_000_000)] = 4000
    concurrency: Annotated[Int, Field(ge=1, le=1024)] = 8
    ttl_s: Annotated[Int, Field(ge=1, le=86_400)] = Field(default=300, description="Redis entries' TTL, s")
    seed: Annotated[Int, Field(ge=0, le=2**31)] = 0

    @field_validator("modes")
    @classmethod
    def _reference_first(cls, modes: list[str]) -> list[str]:
        if modes[0] != "none":
            raise ValueError(
                "must start with 'none' (the uncached run is the reference the cached outputs are checked against)"
            )
        return list(dict.fromkeys(modes))


def response_cache(ctx: Context, p: CacheParams) -> Output:
    """No cache vs Triton response cache vs client Redis cache on one stream: throughput, p50/p99, hit rates."""
    from contextlib import ExitStack

    import numpy as np

    from workloads.serving import harness
    from workloads.serving.caching import (
        CACHED_MODEL,
        MODEL,
        ModeRun,
        explain,
        make_stream,
        measure,
        mismatches,
        pct,
        ttl_note,
    )
    from workloads.serving.common import host_note
    from workloads.serving.repository import mlp_spec

    at_start = host_note()
    stream = make_stream(p)
    ideal = int(stream.repeat.sum())
    specs = [mlp_spec(MODEL), mlp_spec(CACHED_MODEL, response_cache=True)]  # no dynamic batching: one request, one run
    t = Table.of(
        "cache_modes",
        [
            ("cache", ""),
            ("requests", ""),
            ("throughput", "req/s"),
            ("p50", "ms"),
            ("p99", "ms"),
            ("hit rate", "%"),
            ("ideal hit rate", "%"),
            ("hits", ""),
            ("misses", ""),
            ("cross-check hits/misses", ""),
            ("output mismatches", ""),
            ("errors", ""),
        ],
        caption=f"MLP (python backend + onnxruntime), gRPC closed loop, concurrency {p.concurrency}; "
        f"{p.requests} requests, hit_ratio {p.hit_ratio:g} over a pool of {p.pool_size} hot inputs; "
        "hits: Triton's nv_cache_num_hits_per_model (metrics) or the Redis client's counters; hit rate = hits / "
        "successful requests",
    )
    kinds = Table.of(
        "latency_by_request_kind",
        [("cache", ""), ("request", ""), ("requests", ""), ("p50", "ms"), ("p99", "ms"), ("mean", "ms")],
        caption="'repeat' = the input was sent earlier in the stream (an ideal cache's hit); 'first' = never seen",
    )
    runs: dict[str, ModeRun] = {}
    notes = [at_start]
    with harness.serve(ctx, specs, workdir=ctx.workdir / "triton") as srv, ExitStack() as stack:
        redis_url = None
        if "redis" in p.modes:
            rp = stack.enter_context(ctx.platform(services=["redis"], state_dir=ctx.workdir / "redis"))
            redis_url = f"redis://{rp.address('redis', 'redis')}/0"
        for mode in p.modes:
            run, hits, misses, cross = measure(p, stream, srv, mode, redis_url)
            runs[mode] = run
            if mode == "redis" and redis_url:
                notes.append(ttl_note(redis_url, p.ttl_s))
            ok = int((~np.isnan(run.lat_ms)).sum())
            t.add(
                mode,
                p.requests,
                round(ok / run.window_s, 1) if run.window_s else 0.0,
                pct(run.lat_ms, 50),
                pct(run.lat_ms, 99),
                round(100 * hits / ok, 2) if ok else 0.0,
                round(100 * ideal / p.requests, 2),
                hits,
                misses,
                cross,
                mismatches(stream, run.outputs, runs["none"].outputs),
                ", ".join(f"{k} {v}" for k, v in sorted(run.errors.items())) or "none",
            )
            for kind, mask in (("first", ~stream.repeat), ("repeat", stream.repeat)):
                a = run.lat_ms[mask]
                mean = round(float(np.nanmean(a)), 3) if np.isfinite(a).any() else float("nan")
                kinds.add(mode, kind, int(mask.sum()), pct(a, 50), pct(a, 99), mean)
            ctx.log(f"{mode}: {ok / max(run.window_s, 1e-9):.0f} req/s, p50 {pct(run.lat_ms, 50)} ms, hits {hits}")
    notes += explain(runs)
    return Output(tables=[t, kinds], notes=notes)
