"""d05.e4 and d05.e5 against a real tritonserver and a real redis-server, each started by the runner itself.

Timing is never asserted: the canary gate's p99 check is opened wide here (it is tested on synthetic numbers in
tests/unit/serving/test_d05_cache_canary.py) so that a busy host cannot turn the healthy canary into a rollback.
"""

from __future__ import annotations

import re

import pytest

from ailab.contract import Output
from workloads.serving.experiments.canary import CanaryParams, canary_rollout
from workloads.serving.experiments.response_cache import CacheParams, response_cache

pytestmark = pytest.mark.integration


def rows(out: Output, table: str) -> list[dict]:
    t = next(t for t in out.tables if t.name == table)
    return [dict(zip([c.name for c in t.columns], r, strict=True)) for r in t.rows]


@pytest.fixture(scope="module")
def cache_out(tmp_path_factory: pytest.TempPathFactory, make_context) -> Output:
    params = CacheParams(requests=600, pool_size=40, hit_ratio=0.7, concurrency=4, ttl_s=120)
    return response_cache(make_context("d05.e4", tmp_path_factory.mktemp("d05e4")), params)


def test_cached_outputs_equal_uncached_and_nothing_failed(cache_out):
    modes = rows(cache_out, "cache_modes")
    assert [r["cache"] for r in modes] == ["none", "triton", "redis"]
    for r in modes:
        assert r["output mismatches"] == 0, r
        assert r["errors"] == "none", r
        assert r["requests"] == 600


def test_hit_rates_follow_the_streams_repetition(cache_out):
    by = {r["cache"]: r for r in rows(cache_out, "cache_modes")}
    ideal = by["none"]["ideal hit rate"]
    assert 40 < ideal < 70  # 70 % hot draws minus each of the 40 pool inputs' first sight
    assert by["none"]["hits"] == 0 and by["none"]["cross-check hits/misses"] == "statistics 0/0"
    for mode in ("triton", "redis"):
        r = by[mode]
        # a repeat can miss only while the same input's first request is still in flight (<= concurrency of them)
        assert ideal - 100 * 4 * 4 / 600 <= r["hit rate"] <= ideal, r
    tri = by["triton"]
    assert tri["cross-check hits/misses"] == f"statistics {tri['hits']}/{tri['misses']}"  # metrics == statistics
    red = by["redis"]
    assert red["hits"] + red["misses"] == 600
    assert red["cross-check hits/misses"] == f"redis INFO {red['hits']}/{red['misses']}"  # client == server


def test_redis_entries_carry_the_ttl(cache_out):
    note = next(n for n in cache_out.notes if n.startswith("Redis holds"))
    assert note.endswith("TTL in (0, 120] s: yes.")
    held = int(re.search(r"Redis holds (\d+)", note).group(1))
    misses = {r["cache"]: r for r in rows(cache_out, "cache_modes")}["redis"]["misses"]
    assert 0 < held <= misses  # one entry per distinct input that missed


@pytest.fixture(scope="module")
def canary_out(tmp_path_factory: pytest.TempPathFactory, make_context) -> Output:
    params = CanaryParams(phase_s=0.4, concurrency=3, bad=[3, 4], max_p99_ratio=100.0, p99_slack_ms=1000.0)
    return canary_rollout(make_context("d05.e5", tmp_path_factory.mktemp("d05e5")), params)


def test_gate_promotes_v2_and_rolls_back_the_bad_versions(canary_out):
    gates = {r["canary"].split()[0]: r for r in rows(canary_out, "gates")}
    assert gates["v2"]["decision"] == "promote"
    assert gates["v3"]["decision"] == "rollback" and "non-finite" in gates["v3"]["why"]
    assert gates["v4"]["decision"] == "rollback" and gates["v4"]["why"].startswith("load failed")


def test_rollback_leaves_only_v1_ready(canary_out):
    final = next(n for n in canary_out.notes if n.startswith("Final state"))
    assert final.endswith("READY: [1].")
    sw = rows(canary_out, "switches")
    assert sw[-1]["switch"] == "release rollback to v1" and sw[-1]["READY after"] == "[1]"
    ready = {r["switch"]: r["READY after"] for r in sw}
    assert ready["roll back v3"] == "[2]" and ready["add canary v4"] == "[2]"  # the failed load changed nothing


def test_no_request_fails_on_the_serving_version_at_any_switch(canary_out):
    for r in rows(canary_out, "switches"):
        assert r["failed on serving version"] == 0, r
        assert r["failed during"] == 0, r
    for r in rows(canary_out, "phases"):
        assert r["failed"] == 0, r


def test_each_phase_was_served_by_the_version_asked_for(canary_out):
    steady = 0
    for r in rows(canary_out, "phases"):
        ok = r["requests"] - r["failed"]
        assert r["served by (response model_version)"] == f"v{r['version']} {ok}", r
        assert (r["bad outputs"] > 0) == (r["version"] == 3), r  # only the NaN version answers NaN
        if r["server count (statistics)"] != "-":
            steady += 1
            assert r["server count (statistics)"] == ok, r  # counters read with nothing in flight
    assert steady >= 5
