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


# --- the cache in the request path (d16, d28.e3) ---------------------------------------------------------------------
# tritonserver 2.51 as pytriton ships it carries one cache implementation (caches/local/libtritoncache_local.so): no
# Redis cache plugin. The Redis cache therefore sits in front of the server, in the request path: cache-aside.

PATHS = ("hit", "miss", "bypass")  # answered by Redis; by the model, then stored; by the model, Redis skipped (down)


@dataclass
class Entry:
    """One request through CacheAside: perf_counter times, how it was answered, the error kind ("" = success)."""

    t_send: float
    t_end: float
    path: str  # hit | miss | bypass | model (cache disabled)
    error: str = ""
    hot: int = -1  # index of the hot input, -1 for a fresh one
    output: bytes | None = None  # the response's logits bytes (keep_outputs only)


class CacheAside:
    """A Redis cache in front of a Triton client, shaped like AsyncClient for loadgen (prepare / infer / close).

    Each request's input is drawn from a stream: with probability hit_ratio one of pool_size hot inputs, otherwise a
    fresh one. GET by the request's key (model, version, input bytes: cache_key); a hit answers from Redis; a miss
    infers and SETs the response with ttl_s. A Redis failure (down, refused, slower than redis_timeout_s) never fails
    the request: it is answered by the model ("bypass") and Redis is not asked again for breaker_s, so an outage of
    the cache costs latency, not errors. `generation` is part of every key: bumping it (invalidate()) makes every
    stored entry unreachable at once, the fix for stale entries after a model update (d16.e5).
    """

    def __init__(
        self,
        client: AsyncClient,
        redis_url: str,
        model: str,
        version: str = "",
        hit_ratio: float = 0.5,
        pool_size: int = 100,
        ttl_s: float = 60.0,
        redis_timeout_s: float = 0.05,
        breaker_s: float = 0.5,
        seed: int = 0,
        prefix: str = "ailab:cache:",
        enabled: bool = True,
        keep_outputs: bool = False,
        redis_connections: int = 0,
    ) -> None:
        """enabled=False: the same request stream straight to the model (the no-cache reference);
        keep_outputs: keep each response's bytes in the log (consistency checks); redis_connections: at most this
        many Redis connections, a request waits up to redis_timeout_s for one (0: one per concurrent call)."""
        if not 0 <= hit_ratio <= 1:
            raise ValueError(f"hit_ratio {hit_ratio}: allowed 0..1")
        if pool_size < 1:
            raise ValueError(f"pool_size {pool_size}: must be >= 1")
        if ttl_s <= 0:
            raise ValueError(f"ttl_s {ttl_s}: must be > 0 s")
        import redis.asyncio as aioredis

        self.client, self.model, self.version = client, model, version
        self.server = getattr(client, "server", "")
        self.hit_ratio, self.ttl_ms, self.breaker_s = hit_ratio, max(1, int(ttl_s * 1000)), breaker_s
        self.prefix, self.generation = prefix, 0
        self.enabled, self.keep = enabled, keep_outputs
        self.rng = np.random.default_rng(seed)
        self.hot = self.rng.standard_normal((pool_size, 1, 1, 28, 28)).astype(np.float32)
        self._hot_req: dict[int, Any] = {}
        self._hot_key: dict[tuple[int, int], str] = {}
        conn = dict(socket_timeout=redis_timeout_s, socket_connect_timeout=redis_timeout_s, retry_on_timeout=False)
        if redis_connections > 0:
            pool = aioredis.BlockingConnectionPool.from_url(
                redis_url, max_connections=redis_connections, timeout=redis_timeout_s, **conn
            )
            self.redis = aioredis.Redis(connection_pool=pool)
        else:
            self.redis = aioredis.from_url(redis_url, **conn)
        self.skip_until = 0.0
        self.log: list[Entry] = []
        self.redis_errors: Counter[str] = Counter()

    def key(self, x: np.ndarray) -> str:
        return f"{self.prefix}g{self.generation}:" + cache_key(self.model, self.version, "input", x).rsplit(":", 1)[1]

    def invalidate(self) -> int:
        """Make every entry stored so far unreachable (a new key generation); returns the new generation."""
        self.generation += 1
        self._hot_key.clear()
        return self.generation

    def prepare(self, inputs: dict[str, np.ndarray], model: str = "", version: str = "") -> None:
        return None  # each request's input comes from the stream (pick)

    def pick(self, hot: int | None = None) -> tuple[Any, str, int]:
        """The next request: (prepared request, cache key, hot index or -1); `hot` forces that hot input."""
        if hot is not None or self.rng.random() < self.hit_ratio:
            i = int(self.rng.integers(len(self.hot))) if hot is None else hot
            if i not in self._hot_req:
                self._hot_req[i] = self.client.prepare({"input": self.hot[i]}, self.model, self.version)
            k = self._hot_key.get((self.generation, i))
            if k is None:
                k = self._hot_key[(self.generation, i)] = self.key(self.hot[i])
            return self._hot_req[i], k, i
        x = self.rng.standard_normal((1, 1, 28, 28)).astype(np.float32)
        return self.client.prepare({"input": x}, self.model, self.version), self.key(x), -1

    async def _redis(self, op: str, *args: Any, **kw: Any) -> tuple[bool, Any]:
        """(worked, answer) of one Redis call; a failure opens the breaker for breaker_s."""
        try:
            return True, await getattr(self.redis, op)(*args, **kw)
        except Exception as exc:  # noqa: BLE001 - any Redis failure sends the request to the model, never fails it
            self.redis_errors[type(exc).__name__] += 1
            self.skip_until = time.perf_counter() + self.breaker_s
            return False, None

    async def infer(self, model: str, _prepared: Any = None, hot: int | None = None) -> Any:
        """One request of the stream (loadgen calls infer(model, prepared)); returns the logits' bytes."""
        req, key, i = self.pick(hot)
        t0 = time.perf_counter()
        path = "bypass" if self.enabled else "model"
        if self.enabled and t0 >= self.skip_until:
            worked, cached = await self._redis("get", key)
            if worked and cached is not None:
                self.log.append(Entry(t0, time.perf_counter(), "hit", "", i, cached if self.keep else None))
                return cached
            path = "miss" if worked else "bypass"
        try:
            res = await self.client.infer(self.model, req, version=self.version)
        except InferenceError as exc:
            self.log.append(Entry(t0, time.perf_counter(), path, exc.kind, i))
            raise
        out = response_bytes(res)
        if path == "miss":
            await self._redis("set", key, out, px=self.ttl_ms)
        self.log.append(Entry(t0, time.perf_counter(), path, "", i, out if self.keep else None))
        return out

    async def close(self) -> None:
        await self.client.close()
        await self.redis.aclose()


def response_bytes(res: Any) -> bytes:
    """The logits' bytes of a raw gRPC ModelInferResponse or of tritonclient's InferResult."""
    if hasattr(res, "raw_output_contents"):
        return bytes(res.raw_output_contents[0])
    return res.as_numpy("logits").tobytes()


def redis_info(url: str) -> dict[str, float]:
    """Redis' own counters: CPU seconds (user+sys, main thread and children), hits, misses, commands processed and
    the server-side time of GET/SET (µs per call, from INFO commandstats)."""
    import redis

    with redis.Redis.from_url(url, socket_timeout=2) as r:
        info = r.info("all")
    out = {
        "cpu_s": float(info["used_cpu_user"]) + float(info["used_cpu_sys"]),
        "hits": float(info["keyspace_hits"]),
        "misses": float(info["keyspace_misses"]),
        "commands": float(info["total_commands_processed"]),
        "keys": float(sum(v.get("keys", 0) for k, v in info.items() if k.startswith("db") and isinstance(v, dict))),
    }
    for cmd in ("get", "set"):
        st = info.get(f"cmdstat_{cmd}", {})
        out[f"{cmd}_calls"] = float(st.get("calls", 0))
        out[f"{cmd}_usec"] = float(st.get("usec", 0))
    return out
