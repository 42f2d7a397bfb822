"""The load generator's bounded failure policy (workloads/serving/loadgen.py): against a port nobody listens on,
a closed loop with back-off counts a bounded number of failed requests instead of spinning. No server is mocked:
the refused connection is a real one on 127.0.0.1."""

import socket

import pytest

from workloads.serving.loadgen import LoadSpec, run


def _dead_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]  # closed again on exit: connecting is refused


def _spec(**kw) -> LoadSpec:
    base = dict(
        url=f"127.0.0.1:{_dead_port()}",
        model="mlp",
        protocol="http",
        concurrency=4,
        warmup_s=0.0,
        duration_s=1.0,
        inputs={"input": __import__("numpy").zeros((1, 1, 28, 28), "float32")},
    )
    return LoadSpec(**(base | kw))


def test_backoff_bounds_failed_requests_during_an_outage():
    spec = _spec(backoff_s=0.05, backoff_max_s=0.2)
    res = run(spec)
    failed = sum(res.errors.values())
    # each worker waits 0.05, 0.1, 0.2, 0.2, ... after consecutive failures: at most 1 + the waits that fit in 1 s
    per_worker, spent = 1, 0.0
    while spent + spec.wait_after(per_worker) <= spec.duration_s:
        spent += spec.wait_after(per_worker)
        per_worker += 1
    assert res.ok == 0 and set(res.errors) == {"connection"}
    assert 0 < failed <= spec.concurrency * (per_worker + 1)
    assert res.backoff_waits >= failed - spec.concurrency
    assert res.generator_cpu_us_per_request > 0


def test_without_backoff_the_same_outage_is_a_flood_of_instant_failures():
    res = run(_spec(duration_s=0.5))
    assert sum(res.errors.values()) > 4 * 50  # the default keeps today's behaviour (no waits)
    assert res.backoff_waits == 0


def test_wait_doubles_per_consecutive_failure_up_to_the_cap():
    spec = _spec(backoff_s=0.1, backoff_max_s=0.3)
    assert [spec.wait_after(n) for n in range(5)] == [0.0, 0.1, 0.2, 0.3, 0.3]


@pytest.mark.parametrize(
    ("field", "kw"),
    [
        ("retries", {"retries": 11}),
        ("retries", {"retries": -1}),
        ("backoff_s", {"backoff_s": -0.1}),
        ("backoff_max_s", {"backoff_s": 2.0, "backoff_max_s": 1.0}),
        ("mode", {"mode": "burst"}),
    ],
)
def test_bad_policy_is_refused_naming_the_field(field, kw):
    with pytest.raises(ValueError, match=f"^{field} "):
        run(_spec(**kw))


def test_the_gateway_generator_backs_off_the_same_way():
    """workloads/gateway/load.py's closed loop (aiohttp) against the same kind of dead port."""
    import asyncio

    from workloads.gateway import load

    async def go(**kw):
        async with load.Client(f"http://127.0.0.1:{_dead_port()}/v2/models/mlp/infer") as c:
            return await load.closed_loop(c, 4, 100_000, 1.0, **kw)

    spun, bounded = asyncio.run(go()), asyncio.run(go(backoff_s=0.05, backoff_max_s=0.2))
    assert all(s.status == 0 for s in spun.samples + bounded.samples)
    assert len(bounded.samples) <= 4 * 8 < len(spun.samples)  # 0.05+0.1+0.2*4 fit in 1 s: at most 7 per worker
    with pytest.raises(load.LoadError, match="backoff_s"):
        asyncio.run(go(backoff_s=2.0, backoff_max_s=1.0))
