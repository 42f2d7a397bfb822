"""Redis as the response cache in the request path (d16.e1-e5): hit rate vs latency, TTL vs hit rate, Redis under
1k/5k concurrent requests, and stale entries after a model update.

tritonserver 2.51 as pytriton ships it carries one cache implementation, `caches/local`: no Redis cache plugin for
Triton's response cache. So the cache sits in front of the server, cache-aside (workloads/serving/caching.py
CacheAside: GET by model/version/input bytes, a miss infers over gRPC and SETs with a TTL), and every result is
labelled a substitute for "Redis connected to Triton as its response cache". The load is the lab's generator
(workloads/serving/loadgen.py, bounded in count and time, 127.0.0.1 only) driving CacheAside.
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import Field, field_validator

from ailab.contract import Context, Output, Params, Substitute, Table
from workloads.gateway.experiments import Int, Num

SUBSTITUTE = dict(
    instead_of="Redis connected to Triton as its response cache (Triton's cache API with a Redis cache plugin)",
    used="Redis 7 cache-aside in front of tritonserver (workloads/serving/caching.py CacheAside)",
    why="tritonserver 2.51 as pytriton ships it has only caches/local (no redis cache library)",
)
Ratio = Annotated[Num, Field(ge=0, le=1)]


class CacheCommon(Params):
    pool_size: Annotated[Int, Field(ge=1, le=100_000)] = Field(default=200, description="hot (repeating) inputs")
    ttl_s: Annotated[Num, Field(gt=0, le=86_400)] = Field(default=60.0, description="entries' TTL, s")
    concurrency: Annotated[Int, Field(ge=1, le=5000)] = Field(default=8, description="closed-loop workers")
    duration_s: Annotated[Num, Field(gt=0, le=120)] = Field(default=5.0, description="measured window per run, s")
    redis_timeout_s: Annotated[Num, Field(gt=0, le=30)] = Field(
        default=1.0,
        description="a Redis call slower than this goes to the model instead (and Redis is skipped for 0.5 s); "
        "generous here: on a loaded 2-core host a tight timeout measures the host, not the cache",
    )


class SetupParams(CacheCommon):
    hit_ratio: Ratio = Field(default=0.5, description="share of hot inputs in the stream")
    requests: Annotated[Int, Field(ge=10, le=100_000)] = Field(default=2000, description="requests of the check")


class HitRateParams(CacheCommon):
    hit_ratios: Annotated[list[Ratio], Field(min_length=1)] = Field(default=[0.1, 0.5, 0.9])


class TTLParams(CacheCommon):
    ttls_s: Annotated[list[Annotated[Num, Field(gt=0, le=3600)]], Field(min_length=1)] = Field(
        default=[1.0, 10.0, 60.0]
    )
    hit_ratio: Ratio = 0.9
    qps: Annotated[Num, Field(gt=0, le=2000)] = Field(default=100.0, description="open-loop arrivals, req/s")


class ConcurrencyParams(CacheCommon):
    concurrencies: Annotated[list[Annotated[Int, Field(ge=1, le=5000)]], Field(min_length=1)] = Field(
        default=[1000, 5000], description="requests in flight (closed loop; bounded by duration_s)"
    )
    hit_ratio: Ratio = 0.9
    redis_connections: Annotated[Int, Field(ge=0, le=10_000)] = Field(
        default=64, description="client's Redis connection pool (0 = one connection per request in flight)"
    )


class UpdateParams(CacheCommon):
    phase_s: Annotated[Num, Field(gt=0, le=120)] = Field(default=4.0, description="each phase's length, s")

    @field_validator("ttl_s")
    @classmethod
    def _ttl_outlives_a_phase(cls, v: float) -> float:
        if v < 1:
            raise ValueError(f"{v:g}: must be >= 1 s (stale entries have to live through the update)")
        return v


# --- shared machinery ------------------------------------------------------------------------------------------------


def _stack(ctx: Context, explicit: bool = False) -> Any:
    """tritonserver (the MLP, dynamic batching) and Redis, each through the local platform; yields (served, url)."""
    from contextlib import contextmanager

    from workloads.serving import harness
    from workloads.serving.common import variant

    @contextmanager
    def cm() -> Any:
        mode = {"control_mode": "explicit", "load_models": ["mlp"]} if explicit else {}
        spec = [variant("mlp", preferred=(8, 16), delay_us=1000)]
        with (
            harness.serve(ctx, spec, workdir=ctx.workdir / "triton", **mode) as srv,
            ctx.platform(services=["redis"], state_dir=ctx.workdir / "redis") as rp,
        ):
            yield srv, f"redis://{rp.address('redis', 'redis')}/0"

    return cm()


def _cache(srv: Any, url: str, p: CacheCommon, hit_ratio: float, **kw: Any) -> Any:
    from workloads.serving.caching import CacheAside
    from workloads.serving.client import AsyncClient

    client = AsyncClient(srv.address("grpc"), "grpc", timeout_s=30, retries=0)
    kw.setdefault("redis_timeout_s", p.redis_timeout_s)
    return CacheAside(
        client, url, "mlp", hit_ratio=hit_ratio, pool_size=p.pool_size, ttl_s=kw.pop("ttl_s", p.ttl_s), **kw
    )


def _flush(url: str) -> None:
    import redis

    with redis.Redis.from_url(url) as r:
        r.flushdb()
        r.config_resetstat()


def _run(srv: Any, make_cache: Any, **spec_kw: Any) -> Any:
    """One loadgen run with the cache make_cache() returns sending each request (made inside the run's event loop:
    gRPC and Redis asyncio clients bind to it); returns (LoadResult, its window's entries)."""
    import asyncio

    from workloads.serving import loadgen

    spec = loadgen.LoadSpec(srv.address("grpc"), "mlp", "grpc", inputs={}, timeout_s=30, **spec_kw)

    async def go() -> Any:
        cache = make_cache()
        return await loadgen.run_async(spec, client=cache), cache

    res, cache = asyncio.run(go())
    w0 = res.window_start
    return res, [e for e in cache.log if e.t_send >= w0 and e.t_send < w0 + res.window_s]


def _prewarm(srv: Any, url: str, p: CacheCommon) -> None:
    """Store every hot input's response once (so a run measures the steady state, not the first misses)."""
    import asyncio

    async def go() -> None:
        cache = _cache(srv, url, p, 1.0)
        try:
            for i in range(p.pool_size):
                await cache.infer("mlp", hot=i)
        finally:
            await cache.close()

    asyncio.run(go())


def _lat(entries: list[Any], path: str | None = None) -> Any:
    import numpy as np

    return np.sort([1e3 * (e.t_end - e.t_send) for e in entries if not e.error and (path is None or e.path == path)])


def _p(a: Any, q: float) -> float:
    from workloads.serving import stats

    return round(stats.percentile(a, q), 3) if len(a) else float("nan")


def _rate(entries: list[Any]) -> float:
    ok = [e for e in entries if not e.error]
    return round(100.0 * sum(1 for e in ok if e.path == "hit") / len(ok), 2) if ok else float("nan")


# --- runners ---------------------------------------------------------------------------------------------------------


def setup_check(ctx: Context, p: SetupParams) -> Output:
    """d16.e1: what the Triton build carries for caching; Redis deployed; hits/misses counted by the client and by
    Redis agree; every hit's bytes equal the model's answer for that input."""
    import asyncio
    from pathlib import Path

    import pytriton
    import redis

    from workloads.serving.caching import redis_info
    from workloads.serving.common import host_note

    at_start = host_note()
    caches = Path(pytriton.__file__).parent / "tritonserver" / "caches"
    found = sorted(x.name for x in caches.iterdir() if x.is_dir()) if caches.is_dir() else []
    t = Table.of("triton_caches", [("cache implementation", ""), ("library", "")])
    for name in found:
        t.add(name, ", ".join(sorted(f.name for f in (caches / name).iterdir())))
    checks = Table.of("check", [("measure", ""), ("value", ""), ("unit", "")])
    with _stack(ctx) as (srv, url):
        _flush(url)
        with redis.Redis.from_url(url) as r:
            ver = r.info("server")["redis_version"]
        before = redis_info(url)

        async def go() -> Any:
            cache = _cache(srv, url, p, p.hit_ratio, keep_outputs=True)
            ref = _cache(srv, url, p, p.hit_ratio, enabled=False, keep_outputs=True)
            try:
                for _ in range(p.requests):
                    await cache.infer("mlp")
                for i in range(p.pool_size):  # the model's own answer for each hot input
                    await ref.infer("mlp", hot=i)
            finally:
                await cache.close()
                await ref.close()
            return cache.log, {e.hot: e.output for e in ref.log}

        log, truth = asyncio.run(go())
        after = redis_info(url)
    hits = [e for e in log if e.path == "hit"]
    checks.add("Redis version", ver, "")
    checks.add("requests", len(log), "")
    checks.add("hits / misses counted by the client", f"{len(hits)} / {sum(1 for e in log if e.path == 'miss')}", "")
    checks.add(
        "hits / misses counted by Redis (INFO keyspace_hits/misses)",
        f"{int(after['hits'] - before['hits'])} / {int(after['misses'] - before['misses'])}",
        "",
    )
    checks.add("hit rate", _rate(log), "%")
    checks.add("hits whose bytes differ from the model's answer", sum(1 for e in hits if e.output != truth[e.hot]), "")
    checks.add("errors", sum(1 for e in log if e.error), "")
    checks.add("p50 hit / miss", f"{_p(_lat(log, 'hit'), 50)} / {_p(_lat(log, 'miss'), 50)}", "ms")
    notes = [
        at_start,
        f"Triton's cache libraries in this build ({caches}): {', '.join(found) or 'none'}"
        + ("; no redis cache, so the cache sits in front of the server." if "redis" not in found else "."),
    ]
    return Output(tables=[t, checks], notes=notes, substitute=Substitute(**SUBSTITUTE))


def hit_rate_latency(ctx: Context, p: HitRateParams) -> Output:
    """d16.e2: latency (all, hits, misses) at each target hit rate, against the same stream without a cache."""
    from workloads.serving.common import host_note

    at_start = host_note()
    t = Table.of(
        "hit_rates",
        [
            ("cache", ""),
            ("target hit rate", "%"),
            ("measured hit rate", "%"),
            ("requests", ""),
            ("throughput", "req/s"),
            ("p50", "ms"),
            ("p90", "ms"),
            ("p99", "ms"),
            ("hit p50", "ms"),
            ("miss p50", "ms"),
            ("errors", ""),
            ("generator CPU per request", "µs"),
        ],
        caption=f"Closed loop, {p.concurrency} in flight, gRPC to tritonserver, {p.duration_s:g} s each; hot pool "
        f"of {p.pool_size} inputs stored before each run (steady state); a cold input is never seen before",
    )
    base50 = miss50 = float("nan")
    with _stack(ctx) as (srv, url):
        for h in [None, *p.hit_ratios]:  # None: no cache, the same stream's shape straight to the model
            _flush(url)
            if h is not None:
                _prewarm(srv, url, p)
            res, log = _run(
                srv,
                lambda h=h: _cache(srv, url, p, 0.5 if h is None else h, enabled=h is not None),
                concurrency=p.concurrency,
                warmup_s=1.0,
                duration_s=p.duration_s,
            )
            lat = _lat(log)
            t.add(
                "none" if h is None else "redis",
                "" if h is None else round(100 * h, 1),
                _rate(log) if h is not None else "",
                len(log),
                round(res.throughput_rps, 1),
                _p(lat, 50),
                _p(lat, 90),
                _p(lat, 99),
                _p(_lat(log, "hit"), 50),
                _p(_lat(log, "miss" if h is not None else "model"), 50),
                sum(res.errors.values()),
                round(res.generator_cpu_us_per_request, 1),
            )
            if h is None:
                base50 = _p(lat, 50)
            elif h == max(p.hit_ratios):
                miss50 = _p(_lat(log, "miss"), 50)
    notes = [at_start]
    if miss50 > base50:
        notes.append(
            f"A miss costs more than no cache at all ({miss50} ms against {base50} ms p50, at the highest hit rate): "
            "it makes three round trips (GET, the inference, SET) where the uncached request makes one, and on this "
            "loaded 2-core host each round trip also waits for the event loop to be scheduled. The cache pays off "
            "only when hits are common enough to outweigh that."
        )
    return Output(tables=[t], notes=notes, substitute=Substitute(**SUBSTITUTE))


def ttl_hit_rate(ctx: Context, p: TTLParams) -> Output:
    """d16.e3: TTL vs hit rate and latency on an open-loop stream; with the steady-state expectation of each."""
    from workloads.serving.common import host_note

    at_start = host_note()
    lam = p.hit_ratio * p.qps / p.pool_size  # requests per second to one hot input
    t = Table.of(
        "ttl",
        [
            ("TTL", "s"),
            ("requests", ""),
            ("hit rate", "%"),
            ("hit rate, last third", "%"),
            ("steady-state expectation", "%"),
            ("p50", "ms"),
            ("p99", "ms"),
            ("errors", ""),
            ("generator CPU per request", "µs"),
        ],
        caption=f"Open loop, Poisson {p.qps:g} req/s for {p.duration_s:g} s per TTL, empty cache at the start; "
        f"hit_ratio {p.hit_ratio:g} over {p.pool_size} hot inputs: each hot input is asked {lam:.3f} times/s. "
        "Expectation (cache-aside, Poisson requests to a key): after a miss the entry answers the requests of the "
        "next TTL seconds, so hits/requests of a hot key = lam*TTL / (1 + lam*TTL), times hit_ratio",
    )
    with _stack(ctx) as (srv, url):
        for ttl in p.ttls_s:
            _flush(url)
            res, log = _run(
                srv,
                lambda ttl=ttl: _cache(srv, url, p, p.hit_ratio, ttl_s=ttl),
                mode="open",
                qps=p.qps,
                warmup_s=0.0,
                duration_s=p.duration_s,
            )
            lat = _lat(log)
            third = [e for e in log if e.t_send - log[0].t_send >= 2 * p.duration_s / 3] if log else []
            t.add(
                ttl,
                len(log),
                _rate(log),
                _rate(third),
                round(100 * p.hit_ratio * lam * ttl / (1 + lam * ttl), 2),
                _p(lat, 50),
                _p(lat, 99),
                sum(res.errors.values()),
                round(res.generator_cpu_us_per_request, 1),
            )
    notes = [
        at_start,
        "A longer TTL raises the hit rate and lowers latency, and lengthens how long a client can be served a "
        "response the current model would not give (d16.e5): the TTL is the staleness bound without invalidation.",
    ]
    return Output(tables=[t], notes=notes, substitute=Substitute(**SUBSTITUTE))


def redis_concurrency(ctx: Context, p: ConcurrencyParams) -> Output:
    """d16.e4: 1k/5k requests in flight: Redis CPU (INFO used_cpu_*), Redis' own time per GET/SET (commandstats),
    client-side latency of hits and misses, and who limits (the generator's CPU is reported)."""
    from workloads.serving.caching import redis_info
    from workloads.serving.common import host_note

    at_start = host_note()
    t = Table.of(
        "concurrency",
        [
            ("in flight", ""),
            ("requests", ""),
            ("throughput", "req/s"),
            ("hit rate", "%"),
            ("hit p50", "ms"),
            ("hit p99", "ms"),
            ("miss p50", "ms"),
            ("miss p99", "ms"),
            ("Redis CPU", "cores"),
            ("Redis GET", "µs/call"),
            ("Redis SET", "µs/call"),
            ("Redis commands", "1/s"),
            ("Redis skipped (slow or refused)", ""),
            ("errors", ""),
            ("generator CPU", "cores"),
            ("generator CPU per request", "µs"),
        ],
        caption=f"Closed loop, gRPC; hot pool of {p.pool_size} stored first, hit_ratio {p.hit_ratio:g}; "
        f"{p.duration_s:g} s per run; one asyncio generator process; Redis connection pool "
        f"{p.redis_connections or 'unbounded'}, call timeout {p.redis_timeout_s:g} s",
    )
    bottleneck: list[str] = []
    with _stack(ctx) as (srv, url):
        for c in p.concurrencies:
            _flush(url)
            _prewarm(srv, url, p)
            before = redis_info(url)
            res, log = _run(
                srv,
                lambda: _cache(srv, url, p, p.hit_ratio, redis_connections=p.redis_connections),
                concurrency=c,
                warmup_s=1.0,
                duration_s=p.duration_s,
            )
            after = redis_info(url)
            span = res.window_s + 1.0  # Redis' counters cover the warm-up as well
            d = {k: after[k] - before[k] for k in after}
            t.add(
                c,
                len(log),
                round(res.throughput_rps, 1),
                _rate(log),
                _p(_lat(log, "hit"), 50),
                _p(_lat(log, "hit"), 99),
                _p(_lat(log, "miss"), 50),
                _p(_lat(log, "miss"), 99),
                round(d["cpu_s"] / span, 3),
                round(d["get_usec"] / d["get_calls"], 2) if d["get_calls"] else float("nan"),
                round(d["set_usec"] / d["set_calls"], 2) if d["set_calls"] else float("nan"),
                round(d["commands"] / span, 1),
                sum(1 for e in log if e.path == "bypass"),
                ", ".join(f"{k} {v}" for k, v in sorted(res.errors.items())) or "none",
                round(res.generator_cpu, 2),
                round(res.generator_cpu_us_per_request, 1),
            )
    for row in t.rows:
        c, n, skipped, cores, gen = row[0], row[1], row[12], row[8], row[14]
        if n and skipped / n > 0.1:
            bottleneck.append(
                f"At {c} in flight {skipped} of {n} requests skipped Redis (no pooled connection or no reply within "
                f"{p.redis_timeout_s:g} s) and went to the model, while Redis itself used {cores} cores and the "
                f"generator {gen}: the bottleneck is the client side (its {p.redis_connections or 'unbounded'}-"
                "connection pool and one event loop on a shared 2-core host), not Redis."
            )
    notes = [
        at_start,
        *bottleneck,
        "Redis' own time per call (commandstats) against the client's hit latency shows where a hit's time goes: "
        "Redis executes a GET in microseconds; the rest is the client's event loop and the network stack, shared "
        "with the generator on this 2-core host.",
    ]
    return Output(tables=[t], notes=notes, substitute=Substitute(**SUBSTITUTE))


def stale_update(ctx: Context, p: UpdateParams) -> Output:
    """d16.e5: a model update while cached entries live: what clients get (stale vs current answers) with TTL only,
    then after invalidation (a new key generation)."""
    import asyncio
    import contextlib
    import time

    from workloads.serving.client import Client
    from workloads.serving.common import host_note

    at_start = host_note()
    t = Table.of(
        "phases",
        [
            ("phase", ""),
            ("requests", ""),
            ("answers of the old model", ""),
            ("answers of the new model", ""),
            ("old model's share", "%"),
            ("hit rate", "%"),
            ("answered by the model, Redis skipped", ""),
            ("errors", ""),
        ],
        caption=f"Hot inputs only ({p.pool_size}), closed loop {p.concurrency}, TTL {p.ttl_s:g} s, {p.phase_s:g} s "
        "per phase; requests name the model without a version (the key: model, requested version, input bytes); "
        "the update loads version 2 (different weights), Triton serves it and unloads version 1",
    )
    with _stack(ctx, explicit=True) as (srv, url):
        _flush(url)
        v2 = _stage_new_version(srv.repo / "mlp", ctx.workdir / "v2")

        async def phase(cache: Any, seconds: float) -> list[Any]:
            n0 = len(cache.log)
            end = time.perf_counter() + seconds

            async def worker() -> None:
                while time.perf_counter() < end:
                    with contextlib.suppress(Exception):  # a failure is counted in the log
                        await cache.infer("mlp")

            await asyncio.gather(*(worker() for _ in range(p.concurrency)))
            return cache.log[n0:]

        async def truth() -> dict[int, bytes]:
            ref = _cache(srv, url, p, 1.0, enabled=False, keep_outputs=True)
            try:
                for i in range(p.pool_size):
                    await ref.infer("mlp", hot=i)
            finally:
                await ref.close()
            return {e.hot: e.output for e in ref.log}

        async def go() -> tuple[dict, dict, list]:
            old = await truth()
            cache = _cache(srv, url, p, 1.0, keep_outputs=True)
            out = [("before the update", await phase(cache, p.phase_s))]
            await asyncio.to_thread(_load_new, srv, v2)
            new = await truth()
            out.append(("after the update, TTL only", await phase(cache, p.phase_s)))
            cache.invalidate()
            out.append(("after invalidation (new key generation)", await phase(cache, p.phase_s)))
            await cache.close()
            return old, new, out

        old, new, phases = asyncio.run(go())
        with Client(srv.address("grpc"), "grpc") as c:
            idx = c.repository_index()
    differ = sum(1 for i in old if old[i] != new[i])
    for name, log in phases:
        ok = [e for e in log if not e.error]
        n_old = sum(1 for e in ok if e.output == old[e.hot] and old[e.hot] != new[e.hot])  # current before the update
        n_new = sum(1 for e in ok if e.output == new[e.hot])
        t.add(
            name,
            len(log),
            n_old,
            n_new,
            round(100 * n_old / len(ok), 2) if ok else 0.0,
            _rate(log),
            sum(1 for e in log if e.path == "bypass"),
            sum(1 for e in log if e.error),
        )
    notes = [
        at_start,
        f"Version 2 answers differently from version 1 for {differ} of {len(old)} hot inputs (checked on the model "
        "itself, cache bypassed, before and after the update).",
        "Repository after the update: "
        + ", ".join(f"{m.get('name')} v{m.get('version')} {m.get('state')}" for m in idx),
        "Without invalidation clients keep getting the old model's answers for as long as the entries live (up to "
        "the TTL); a new key generation (or the served version in the key) makes every old entry unreachable at "
        "once, and the next request for each input is a miss answered by the new model.",
    ]
    return Output(tables=[t], notes=notes, substitute=Substitute(**SUBSTITUTE))


def _stage_new_version(model_dir: Any, staging: Any) -> Any:
    """Version 2 of the MLP with different weights (the logits' bias shifted by 1.0 per class, alternating sign) in
    a staging directory: copied into the repository at the update."""
    import shutil

    import numpy as np
    import onnx
    from onnx import numpy_helper

    shutil.rmtree(staging, ignore_errors=True)
    shutil.copytree(model_dir / "1", staging)
    m = onnx.load(staging / "model.onnx")
    init = m.graph.initializer
    last_bias = next(i for i in reversed(init) if len(i.dims) == 1 and i.dims[0] == 10)
    arr = numpy_helper.to_array(last_bias).copy()
    arr += np.where(np.arange(arr.size) % 2 == 0, 1.0, -1.0).astype(arr.dtype)
    last_bias.CopyFrom(numpy_helper.from_array(arr, last_bias.name))
    onnx.save(m, staging / "model.onnx")
    return staging


def _load_new(srv: Any, staged: Any) -> None:
    import shutil

    from workloads.serving.client import Client

    shutil.copytree(staged, srv.repo / "mlp" / "2")
    with Client(srv.address("grpc"), "grpc", timeout_s=120) as c:
        c.load("mlp")
