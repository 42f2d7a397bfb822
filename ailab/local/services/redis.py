"""Redis 7 (Debian's /usr/bin/redis-server) as a local, memory-only cache: no RDB/AOF files, loopback only.

Options (PlatformContext.options): `redis.maxmemory` (e.g. "64mb"; default "0" = no limit),
`redis.policy` (maxmemory-policy, default "allkeys-lru"), `redis.args` (extra command-line arguments).
"""

from __future__ import annotations

import shutil
from collections.abc import Callable

from ailab.local.registry import PlatformError
from ailab.local.spec import HOST, PlatformContext, ServiceSpec

DEFAULT_PORT = 6379  # Redis' own default


def ping(port: int) -> Callable[[], bool]:
    """Readiness: the server answers PING (the port being open is not enough while it loads)."""

    def probe() -> bool:
        import redis

        try:
            return bool(redis.Redis(host=HOST, port=port, socket_timeout=1).ping())
        except redis.RedisError:
            return False

    return probe


def spec(ctx: PlatformContext) -> ServiceSpec:
    server = shutil.which("redis-server")
    if server is None:
        raise PlatformError("service redis: binary 'redis-server' not found (apt-get install redis-server)")
    port = ctx.port("redis.redis", DEFAULT_PORT)
    argv = [
        server,
        "--bind",
        HOST,
        "--port",
        str(port),
        "--dir",
        str(ctx.data_dir("redis")),
        "--save",
        "",  # a cache: nothing to persist, and no fork for snapshots on a 2-core host
        "--appendonly",
        "no",
        "--maxmemory",
        str(ctx.options.get("redis.maxmemory", "0")),
        "--maxmemory-policy",
        str(ctx.options.get("redis.policy", "allkeys-lru")),
        "--daemonize",
        "no",
        *ctx.options.get("redis.args", []),
    ]
    return ServiceSpec(
        name="redis",
        argv=argv,
        ports={"redis": port},
        ready=ping(port),
        log=ctx.log_path("redis"),
        ready_timeout_s=20.0,
        info={"url": f"redis://{HOST}:{port}/0"},
    )
