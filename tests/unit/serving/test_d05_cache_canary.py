"""d05.e4/e5 without servers: typed parameters, the repeating request stream, cache keys and the canary health gate."""

from __future__ import annotations

import numpy as np
import pytest

from ailab.contract.params import ParamsError, validate
from workloads.serving import caching, canary
from workloads.serving.experiments.canary import CanaryParams
from workloads.serving.experiments.response_cache import CacheParams


@pytest.mark.parametrize(
    ("params", "field", "allowed"),
    [
        ({"hit_ratio": 1.5}, "field hit_ratio = 1.5", "less than or equal to 1"),
        ({"hit_ratio": "often"}, "field hit_ratio = 'often'", "valid number"),
        ({"pool_size": 0}, "field pool_size = 0", "greater than or equal to 1"),
        ({"requests": 2.5}, "field requests = 2.5", "valid integer"),
        ({"concurrency": True}, "field concurrency = True", "valid integer"),
        ({"modes": ["redis"]}, "field modes = ['redis']", "must start with 'none'"),
        ({"modes": ["none", "memcached"]}, "field modes.1 = 'memcached'", "'none', 'triton' or 'redis'"),
        ({"modes": []}, "field modes = []", "at least 1 item"),
        ({"ttl": 5}, "field ttl: unknown parameter", "ttl_s"),
    ],
)
def test_cache_params_reject_bad_input_naming_field_value_and_allowed(params, field, allowed):
    with pytest.raises(ParamsError) as e:
        validate(CacheParams, params)
    assert field in str(e.value) and allowed in str(e.value)


def test_cache_params_keep_each_mode_once_in_order():
    assert CacheParams(modes=["none", "redis", "none", "redis"]).modes == ["none", "redis"]


@pytest.mark.parametrize(
    ("params", "field", "allowed"),
    [
        ({"split": [80, 30]}, "split [80, 30]", "must sum to 100"),
        ({"split": [100, 0]}, "split [100, 0]", "canary > 0"),
        ({"split": [90]}, "field split = [90]", "at least 2 items"),
        ({"canary": 7}, "field canary = 7", "1 or 2"),
        ({"canary": 1}, "canary 1", "other than stable (1)"),
        ({"stable": 3}, "field stable = 3", "1 or 2"),
        ({"stable": True}, "field stable = True", "not a boolean"),
        ({"bad": [2]}, "field bad.0 = 2", "3 or 4"),
        ({"phase_s": 0}, "field phase_s = 0", "greater than or equal to 0.1"),
    ],
)
def test_canary_params_reject_bad_input_naming_field_value_and_allowed(params, field, allowed):
    with pytest.raises(ParamsError) as e:
        validate(CanaryParams, params)
    assert field in str(e.value) and allowed in str(e.value)


def test_stream_repeats_at_the_configured_rate_and_counts_the_ideal_hits():
    s = CacheParams(hit_ratio=0.7, pool_size=50, requests=20_000)
    st = caching.make_stream(s)
    hot = st.repeat.sum() + 50  # every hot draw repeats except each pool input's first appearance
    assert abs(hot / s.requests - 0.7) < 0.02
    first = {}
    for i, k in enumerate(st.ids.tolist()):  # repeat[i] <=> the input was sent before i
        assert st.repeat[i] == (k in first)
        first.setdefault(k, i)
    assert len(st.inputs) == st.ids.max() + 1 == len(first)


def test_stream_extremes_and_determinism():
    never = caching.make_stream(CacheParams(hit_ratio=0.0, requests=100))
    assert not never.repeat.any() and len(never.inputs) == 100
    one = caching.make_stream(CacheParams(hit_ratio=1.0, pool_size=1, requests=100))
    assert one.repeat.sum() == 99 and len(one.inputs) == 1
    a = caching.make_stream(CacheParams(seed=3))
    b = caching.make_stream(CacheParams(seed=3))
    assert np.array_equal(a.ids, b.ids) and np.array_equal(a.inputs, b.inputs)


def test_cache_key_covers_model_version_and_input_bytes():
    x = np.zeros((1, 1, 28, 28), np.float32)
    y = x.copy()
    y[0, 0, 0, 0] = 1e-7
    k = caching.cache_key("m", "1", "input", x)
    assert k == caching.cache_key("m", "1", "input", x.copy())
    assert len({k, caching.cache_key("m", "2", "input", x), caching.cache_key("n", "1", "input", x)}) == 3
    assert k != caching.cache_key("m", "1", "input", y)
    assert k != caching.cache_key("m", "1", "input", x.reshape(1, 784))


def test_mismatches_count_differences_to_reference_and_within_a_run():
    st = caching.Stream(ids=np.array([0, 1, 0]), inputs=np.zeros((2, 1)), repeat=np.array([False, False, True]))
    ref = [b"a", b"b", b"a"]
    assert caching.mismatches(st, ref, ref) == 0
    assert caching.mismatches(st, [b"a", b"x", b"a"], ref) == 1
    assert caching.mismatches(st, [b"a", b"b", None], ref) == 0  # a failed request is counted as an error


def _stats(lat, failed=0, bad=0, version=2):
    st = canary.VersionStats(lat_ms=list(lat), failed=failed, bad_outputs=bad)
    st.served[version] = len(lat)
    return st


def _gate(stable, can, ref, out, **params):
    return canary.gate(CanaryParams(**params), stable, can, ref, out, 2, 1)


def test_gate_promotes_a_healthy_canary_and_says_why_it_rolls_back():
    rng = np.random.default_rng(0)
    ref = rng.standard_normal((64, 10)).astype(np.float32)
    stable = _stats(np.full(500, 2.0), version=1)
    ok = _gate(stable, _stats(np.full(50, 2.5)), ref, ref + 0.01)
    assert ok.decision == "promote" and ok.reasons == []
    slow = _gate(stable, _stats(np.full(50, 20.0)), ref, ref)
    assert slow.decision == "rollback" and "p99 20.00 ms > 11.00 ms" in slow.reasons[0]
    failing = _gate(stable, _stats(np.full(90, 2.0), failed=10), ref, ref)
    assert "error rate 10.00 % > 1 %" in failing.reasons[0]
    nan = ref.copy()
    nan[0, 0] = np.nan
    assert _gate(stable, _stats(np.full(50, 2.0), bad=3), ref, nan).reasons == [
        "3 live responses NaN/Inf or mis-shaped",
        "non-finite outputs",
    ]
    shuffled = _gate(stable, _stats(np.full(50, 2.0)), ref, ref[::-1].copy())
    assert any("top-1 agreement" in r for r in shuffled.reasons)
    assert "output shape" in _gate(stable, _stats([2.0]), ref, ref[:, :5]).reasons[0]
    assert "probe request failed" in _gate(stable, _stats([2.0]), ref, None).reasons
    assert "no canary request completed" in _gate(stable, _stats([]), ref, ref).reasons
    wrong = _stats([2.0], version=1)  # the server answered from another version than asked
    assert any("responses named versions [1]" in r for r in _gate(stable, wrong, ref, ref).reasons)


def test_redis_service_binds_loopback_and_persists_nothing(tmp_path):
    from ailab.local.services import redis as redis_service
    from ailab.local.spec import PlatformContext

    spec = redis_service.spec(PlatformContext(week=1, state_dir=tmp_path, free_ports=True))
    argv = spec.argv
    assert argv[argv.index("--bind") + 1] == "127.0.0.1"
    assert argv[argv.index("--port") + 1] == str(spec.ports["redis"])
    assert argv[argv.index("--save") + 1] == "" and argv[argv.index("--appendonly") + 1] == "no"
    assert callable(spec.ready) and spec.ready() is False  # nothing listens yet: the probe says so, it does not raise
