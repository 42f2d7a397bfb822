"""d05.e4/e5 without servers: parameter checks, the repeating request stream, cache keys and the canary health gate."""

from __future__ import annotations

import numpy as np
import pytest

from ailab.contract import Context
from workloads.serving import canary, exp_d05_cache, exp_d05_canary


@pytest.mark.parametrize(
    ("params", "field", "allowed"),
    [
        ({"hit_ratio": 1.5}, "params.hit_ratio 1.5", "number 0..1"),
        ({"hit_ratio": "often"}, "params.hit_ratio 'often'", "number 0..1"),
        ({"pool_size": 0}, "params.pool_size 0", "integer 1..100000"),
        ({"requests": 2.5}, "params.requests 2.5", "integer"),
        ({"modes": ["redis"]}, "params.modes ['redis']", "starting with 'none'"),
        ({"modes": ["none", "memcached"]}, "params.modes ['none', 'memcached']", "none, triton, redis"),
    ],
)
def test_cache_settings_reject_bad_input_naming_field_value_and_allowed(params, field, allowed):
    with pytest.raises(ValueError) as e:
        exp_d05_cache.settings(params)
    assert field in str(e.value) and allowed in str(e.value)


@pytest.mark.parametrize(
    ("params", "field", "allowed"),
    [
        ({"split": [80, 30]}, "params.split [80, 30]", "summing to 100"),
        ({"split": [100, 0]}, "params.split [100, 0]", "canary > 0"),
        ({"split": [90]}, "params.split [90]", "two integers"),
        ({"canary": 7}, "params.canary 7", "one of [1, 2] other than stable (1)"),
        ({"canary": 1}, "params.canary 1", "other than stable (1)"),
        ({"stable": 3}, "params.stable 3", "one of [1, 2]"),
        ({"bad": [2]}, "params.bad [2]", "among [3, 4]"),
        ({"phase_s": 0}, "params.phase_s 0", "number 0.1..60"),
    ],
)
def test_canary_settings_reject_bad_input_naming_field_value_and_allowed(params, field, allowed):
    with pytest.raises(ValueError) as e:
        canary.settings(params)
    assert field in str(e.value) and allowed in str(e.value)


def test_runners_reject_bad_input_before_starting_anything(tmp_path):
    for runner, params in (
        (exp_d05_cache.response_cache, {"hit_ratio": 1.5}),
        (exp_d05_canary.canary_rollout, {"split": [50, 40]}),
    ):
        ctx = Context("d05.eX", params, "cpu", True, tmp_path)
        with pytest.raises(ValueError, match="params"):
            runner(ctx)
    assert list(tmp_path.iterdir()) == []  # no repository, no state dir: nothing was built or started


def test_stream_repeats_at_the_configured_rate_and_counts_the_ideal_hits():
    s = exp_d05_cache.settings({"hit_ratio": 0.7, "pool_size": 50, "requests": 20_000})
    st = exp_d05_cache.make_stream(s)
    hot = st.repeat.sum() + 50  # every hot draw repeats except each pool input's first appearance
    assert abs(hot / s.requests - 0.7) < 0.02
    first = {}
    for i, k in enumerate(st.ids.tolist()):  # repeat[i] <=> the input was sent before i
        assert st.repeat[i] == (k in first)
        first.setdefault(k, i)
    assert len(st.inputs) == st.ids.max() + 1 == len(first)


def test_stream_extremes_and_determinism():
    never = exp_d05_cache.make_stream(exp_d05_cache.settings({"hit_ratio": 0.0, "requests": 100}))
    assert not never.repeat.any() and len(never.inputs) == 100
    one = exp_d05_cache.make_stream(exp_d05_cache.settings({"hit_ratio": 1.0, "pool_size": 1, "requests": 100}))
    assert one.repeat.sum() == 99 and len(one.inputs) == 1
    a = exp_d05_cache.make_stream(exp_d05_cache.settings({"seed": 3}))
    b = exp_d05_cache.make_stream(exp_d05_cache.settings({"seed": 3}))
    assert np.array_equal(a.ids, b.ids) and np.array_equal(a.inputs, b.inputs)


def test_cache_key_covers_model_version_and_input_bytes():
    x = np.zeros((1, 1, 28, 28), np.float32)
    y = x.copy()
    y[0, 0, 0, 0] = 1e-7
    k = exp_d05_cache.cache_key("m", "1", "input", x)
    assert k == exp_d05_cache.cache_key("m", "1", "input", x.copy())
    assert len({k, exp_d05_cache.cache_key("m", "2", "input", x), exp_d05_cache.cache_key("n", "1", "input", x)}) == 3
    assert k != exp_d05_cache.cache_key("m", "1", "input", y)
    assert k != exp_d05_cache.cache_key("m", "1", "input", x.reshape(1, 784))


def test_mismatches_count_differences_to_reference_and_within_a_run():
    st = exp_d05_cache.Stream(ids=np.array([0, 1, 0]), inputs=np.zeros((2, 1)), repeat=np.array([False, False, True]))
    ref = [b"a", b"b", b"a"]
    assert exp_d05_cache.mismatches(st, ref, ref) == 0
    assert exp_d05_cache.mismatches(st, [b"a", b"x", b"a"], ref) == 1
    assert exp_d05_cache.mismatches(st, [b"a", b"b", None], ref) == 0  # a failed request is counted as an error


def _stats(lat, failed=0, bad=0, version=2):
    st = canary.VersionStats(lat_ms=list(lat), failed=failed, bad_outputs=bad)
    st.served[version] = len(lat)
    return st


def _gate(stable, can, ref, out, **params):
    return canary.gate(canary.settings(params), stable, can, ref, out, 2, 1)


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
