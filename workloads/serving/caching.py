"""d05.e4's pieces: one model and one request stream three ways: no cache, Triton's response cache, a client-side
Redis cache (the runner: workloads/serving/experiments/response_cache.py).

The stream repeats inputs at a controlled rate: each request is, with probability `hit_ratio`, one of `pool_size`
hot inputs, otherwise an input never sent before. An ideal cache hits every request whose input was sent earlier,
so the ideal hit rate is counted from the stream itself and the measured hit rates are compared with it.
"""

from __future__ import annotations

import asyncio
import hashlib
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from workloads.serving import harness, loadgen, metrics
from workloads.serving.client import AsyncClient, Client, InferenceError

if TYPE_CHECKING:
    from workloads.serving.experiments.response_cache import CacheParams

MODES = ("none", "triton", "redis")
MODEL, CACHED_MODEL, VERSION = "mlp_plain", "mlp_cached", "1"
KEY_PREFIX = "ailab:d05.e4:"


@dataclass(frozen=True)
class Stream:
    ids: np.ndarray  # distinct-input index of each request
    inputs: np.ndarray  # [distinct, 1, 1, 28, 28] FP32
    repeat: np.ndarray  # bool per request: its input was sent earlier (an ideal cache's hit)


def make_stream(s: CacheParams) -> Stream:
    """Requests: hot (prob. hit_ratio, uniform over pool_size inputs) or a fresh input; deterministic in seed."""
    rng = np.random.default_rng(s.seed)
    hot = rng.random(s.requests) < s.hit_ratio
    raw = np.where(hot, rng.integers(0, s.pool_size, s.requests), s.pool_size + np.arange(s.requests))
    _, ids = np.unique(raw, return_inverse=True)  # compact: only inputs the stream uses get generated
    inputs = rng.standard_normal((int(ids.max()) + 1, 1, 1, 28, 28)).astype(np.float32)
    repeat = np.zeros(s.requests, dtype=bool)
    seen: set[int] = set()
    for i, k in enumerate(ids.tolist()):
        repeat[i] = k in seen
        seen.add(k)
    return Stream(ids=ids, inputs=inputs, repeat=repeat)


def cache_key(model: str, version: str, name: str, x: np.ndarray) -> str:
    """What identifies a response, as Triton's cache does: model, version, input name, dtype, shape and bytes."""
    h = hashlib.sha256(f"{model}\0{version}\0{name}\0{x.dtype.str}\0{x.shape}\0".encode())
    h.update(np.ascontiguousarray(x).tobytes())
    return KEY_PREFIX + h.hexdigest()


@dataclass
class ModeRun:
    lat_ms: np.ndarray
    outputs: list[bytes | None]
    client_hits: int = 0
    client_misses: int = 0
    errors: Counter[str] = field(default_factory=Counter)
    window_s: float = 0.0


async def drive(s: CacheParams, stream: Stream, url: str, model: str, redis_url: str | None) -> ModeRun:
    """Closed loop: `concurrency` workers take the stream's requests in order; Redis first when redis_url is set."""
    client = AsyncClient(url, "grpc", timeout_s=30, retries=0)
    reqs = [client.prepare({"input": x}, model, VERSION) for x in stream.inputs]
    keys = [cache_key(model, VERSION, "input", x) for x in stream.inputs] if redis_url else []
    rds: Any = None
    if redis_url:
        import redis.asyncio as aioredis

        rds = aioredis.from_url(redis_url, max_connections=s.concurrency + 2)
        await rds.ping()
    n = len(stream.ids)
    run = ModeRun(lat_ms=np.full(n, np.nan), outputs=[None] * n)
    nxt = iter(range(n))

    async def one(i: int) -> None:
        k = int(stream.ids[i])
        t0 = time.perf_counter()
        try:
            if rds is not None:
                out = await rds.get(keys[k])
                if out is not None:
                    run.client_hits += 1
                else:
                    run.client_misses += 1
                    out = (await client.infer(model, reqs[k])).raw_output_contents[0]
                    await rds.set(keys[k], out, ex=s.ttl_s)
            else:
                out = (await client.infer(model, reqs[k])).raw_output_contents[0]
        except InferenceError as exc:
            run.errors[exc.kind] += 1
            return
        except Exception as exc:  # noqa: BLE001 - a Redis or client failure is counted, not allowed to stop the run
            run.errors[type(exc).__name__] += 1
            return
        run.lat_ms[i] = (time.perf_counter() - t0) * 1e3
        run.outputs[i] = bytes(out)

    async def worker() -> None:
        for i in nxt:
            await one(i)

    try:
        t0 = time.perf_counter()
        await asyncio.gather(*[worker() for _ in range(s.concurrency)])
        run.window_s = time.perf_counter() - t0
    finally:
        await client.close()
        if rds is not None:
            await rds.aclose()
    return run


def server_cache(served: harness.Served, model: str) -> dict[str, int]:
    """Triton's own cache counters for `model`: the statistics extension and the Prometheus metrics."""
    with Client(served.address("grpc"), "grpc") as c:
        st = c.c.get_inference_statistics(model, VERSION, as_json=True)["model_stats"][0]["inference_stats"]
    fams = {"nv_cache_num_hits_per_model": "m_hits", "nv_cache_num_misses_per_model": "m_misses"}
    out = {
        "s_hits": int(st.get("cache_hit", {}).get("count", 0)),
        "s_misses": int(st.get("cache_miss", {}).get("count", 0)),
    }
    out.update({v: 0 for v in fams.values()})
    from prometheus_client.parser import text_string_to_metric_families

    for fam in text_string_to_metric_families(metrics.scrape(served.metrics_url)):
        for smp in fam.samples:
            name = smp.name.removesuffix("_total")
            if name in fams and smp.labels.get("model") == model:
                out[fams[name]] += int(smp.value)
    return out


def redis_stats(url: str) -> dict[str, int]:
    import redis

    with redis.Redis.from_url(url) as r:
        info = r.info("stats")
    return {"hits": int(info["keyspace_hits"]), "misses": int(info["keyspace_misses"])}


def pct(a: np.ndarray, p: float) -> float:
    return round(loadgen.percentile(np.sort(a[~np.isnan(a)]), p), 3)


def measure(
    s: CacheParams, stream: Stream, srv: harness.Served, mode: str, redis_url: str | None
) -> tuple[ModeRun, int, int, str]:
    """One mode over the whole stream: (run, hits, misses, the second source's hits/misses as text)."""
    model = CACHED_MODEL if mode == "triton" else MODEL
    use_redis = redis_url if mode == "redis" else None
    before = server_cache(srv, model)
    rb = redis_stats(use_redis) if use_redis else {}
    run = asyncio.run(drive(s, stream, srv.address("grpc"), model, use_redis))
    d = {k: v - before[k] for k, v in server_cache(srv, model).items()}
    stats = f"statistics {d['s_hits']}/{d['s_misses']}"
    if mode == "triton":
        return run, d["m_hits"], d["m_misses"], stats
    if use_redis:
        ra = redis_stats(use_redis)
        return (
            run,
            run.client_hits,
            run.client_misses,
            f"redis INFO {ra['hits'] - rb['hits']}/{ra['misses'] - rb['misses']}",
        )
    return run, 0, 0, stats


def mismatches(stream: Stream, outputs: list[bytes | None], reference: list[bytes | None]) -> int:
    """Responses whose bytes differ from the uncached run's for the same request, or from an earlier response to the
    same input in this run (so the uncached run checks itself: the model must be deterministic for a cache to be
    correct)."""
    first: dict[int, bytes] = {}
    bad = 0
    for k, o, r in zip(stream.ids.tolist(), outputs, reference, strict=True):
        if o is None:
            continue
        bad += (r is not None and o != r) or first.setdefault(k, o) != o
    return bad


def ttl_note(url: str, ttl_s: int) -> str:
    import redis

    with redis.Redis.from_url(url) as r:
        keys = list(r.scan_iter(match=KEY_PREFIX + "*", count=1000))
        ttls = [r.ttl(k) for k in keys[:50]]
    ok = all(0 < x <= ttl_s for x in ttls)
    return (
        f"Redis holds {len(keys)} cached responses (value = the logits tensor's raw FP32 bytes); the {len(ttls)} "
        f"keys sampled all carry a TTL in (0, {ttl_s}] s: {'yes' if ok else 'NO'}."
    )


def explain(runs: dict[str, ModeRun]) -> list[str]:
    """Where the latency difference comes from, with this run's own p50s."""
    base = runs.get("none")
    out = []
    if base is None:
        return out
    b50 = pct(base.lat_ms, 50)
    for mode, what in (
        (
            "triton",
            "a hit is answered inside tritonserver from its in-process cache: the gRPC round trip and request "
            "handling remain, but the python-backend stub (shared-memory IPC to a second process) and the "
            "onnxruntime execution are skipped; a miss pays a hash and an insert (microseconds)",
        ),
        (
            "redis",
            "a hit never reaches Triton: one Redis GET round trip (small value, same host) replaces the whole "
            "inference; a miss pays GET + inference + SET, so it is slower than no cache at all",
        ),
    ):
        if mode in runs:
            m50 = pct(runs[mode].lat_ms, 50)
            out.append(f"{mode}: p50 {m50} ms vs {b50} ms without a cache ({b50 / m50:.2f}x); {what}.")
    out.append(
        "Trade-off: Triton's cache is per server process (each replica warms its own, lost on restart) and needs "
        "no client change; Redis is shared by every client and replica and survives server restarts, but adds a "
        "network hop to every miss, needs the client to build a correct key (model, version, input bytes) and a "
        "TTL or explicit invalidation when a new model version is rolled out."
    )
    out.append(
        "Triton 2.51 with the local cache fills the per-model counters (nv_cache_num_hits_per_model, statistics "
        "cache_hit/cache_miss); its global nv_cache_num_hits/misses stay 0, so they are not used. Triton counts a "
        "miss when it inserts the response: a repeat that arrives while the same input is still executing misses "
        "as well, but its insert finds the key present and is not counted, so Triton's hits + misses can fall a "
        "few short of the requests."
    )
    return out
