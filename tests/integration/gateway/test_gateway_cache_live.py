"""The Redis cache in the request path against a real Redis 7 and a real tritonserver (started once for the module
through the same Context/platform path `lab run` uses). Nothing is mocked; bounded bursts to 127.0.0.1 only."""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import Iterator
from typing import Any

import pytest

from ailab.contract import Context
from ailab.runner import local_platform
from workloads.serving import harness
from workloads.serving.caching import CacheAside, redis_info
from workloads.serving.client import AsyncClient
from workloads.serving.common import variant

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(shutil.which("redis-server") is None, reason="redis-server not installed"),
]


@pytest.fixture(scope="module")
def stack(tmp_path_factory) -> Iterator[tuple[Any, str, Any]]:
    ctx = Context(
        experiment_id="test",
        device="cpu",
        quick=True,
        workdir=tmp_path_factory.mktemp("cache"),
        platform=local_platform,
    )
    with (
        harness.serve(ctx, [variant("mlp")], workdir=ctx.workdir / "triton", warm_requests=2) as srv,
        ctx.platform(services=["redis"], state_dir=ctx.workdir / "redis") as rp,
    ):
        yield srv, f"redis://{rp.address('redis', 'redis')}/0", rp


def _burst(srv: Any, url: str, n: int, **kw: Any) -> CacheAside:
    async def go() -> CacheAside:
        cache = CacheAside(AsyncClient(srv.address("grpc"), "grpc", timeout_s=30, retries=0), url, "mlp", **kw)
        try:
            for _ in range(n):
                await cache.infer("mlp")
        finally:
            await cache.close()
        return cache

    return asyncio.run(go())


def test_hits_and_misses_are_counted_alike_by_the_client_and_by_redis(stack):
    srv, url, _ = stack
    before = redis_info(url)
    cache = _burst(srv, url, 200, hit_ratio=0.8, pool_size=10, keep_outputs=True, prefix="t1:")
    after = redis_info(url)
    hits = [e for e in cache.log if e.path == "hit"]
    misses = [e for e in cache.log if e.path == "miss"]
    assert len(hits) + len(misses) == 200 and not any(e.error for e in cache.log)
    assert after["hits"] - before["hits"] == len(hits) > 100  # 10 hot inputs: all but their first request hit
    assert after["misses"] - before["misses"] == len(misses)
    first = {e.hot: e.output for e in misses if e.hot >= 0}
    assert all(e.output == first[e.hot] for e in hits)  # a hit returns what the model answered for that input


def test_invalidation_makes_every_stored_entry_a_miss(stack):
    srv, url, _ = stack

    async def go() -> CacheAside:
        cache = CacheAside(
            AsyncClient(srv.address("grpc"), "grpc", timeout_s=30, retries=0), url, "mlp", pool_size=3, prefix="t2:"
        )
        try:
            for i in (0, 1, 2, 0, 1, 2):
                await cache.infer("mlp", hot=i)
            cache.invalidate()
            for i in (0, 1, 2):
                await cache.infer("mlp", hot=i)
        finally:
            await cache.close()
        return cache

    assert [e.path for e in asyncio.run(go()).log] == ["miss"] * 3 + ["hit"] * 3 + ["miss"] * 3


def test_a_dead_redis_costs_latency_not_errors(stack):
    srv, url, rp = stack
    import os
    import signal

    os.kill(rp.record("redis").pid, signal.SIGKILL)
    try:
        cache = _burst(srv, url, 30, hit_ratio=1.0, pool_size=2, prefix="t3:", breaker_s=0.0)
    finally:
        rp.up()  # the same port again, for any later test
    assert not any(e.error for e in cache.log)
    assert {e.path for e in cache.log} == {"bypass"} and sum(cache.redis_errors.values()) == 30
