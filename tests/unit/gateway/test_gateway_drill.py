"""The load generator's bounds, the phase bookkeeping of the drills and the runners' parameter checks, on synthetic
samples (no server: what they compute from answers is checked here, the answers themselves in the integration tests)."""

from __future__ import annotations

import asyncio
import json

import pytest
from pydantic import ValidationError

from workloads.gateway import drill, load
from workloads.gateway.experiments.rate_limit import RateLimitParams
from workloads.gateway.experiments.routing import RollbackParams, SplitParams, SwitchParams, _worst_window


def sample(t: float, server: str = "v1", status: int = 200, ms: float = 1.0) -> load.Sample:
    return load.Sample(t, ms, status, server[1:] if status == 200 else "", server)


@pytest.mark.parametrize("url", ["http://10.0.0.1:80/x", "http://localhost:80/x", "http://example.com/x"])
def test_load_targets_only_loopback(url):
    with pytest.raises(load.LoadError, match=r"targets only 127\.0\.0\.1"):
        load.Client(url)


def test_infer_body_is_a_binary_tensor_request():
    body, headers = load.infer_body()
    n = int(headers["Inference-Header-Content-Length"])
    header = json.loads(body[:n])
    assert header["inputs"][0]["shape"] == [1, 1, 28, 28]
    assert len(body) - n == header["inputs"][0]["parameters"]["binary_data_size"] == 28 * 28 * 4


def test_loops_refuse_unbounded_runs():
    c = load.Client("http://127.0.0.1:9/x")
    with pytest.raises(load.LoadError, match="max_s 0"):
        asyncio.run(load.closed_loop(c, 1, 10, 0))
    with pytest.raises(load.LoadError, match="duration_s 601"):
        asyncio.run(load.open_loop(c, 100, 601))


def test_stats_counts_split_failures_and_version_mismatch():
    ss = [sample(0, "v1")] * 7 + [sample(0, "v2")] * 3 + [sample(0, "v2", 503)]
    ss.append(load.Sample(0, 1.0, 200, "2", "v1"))  # server says v1, body says version 2
    st = drill.stats(ss)
    assert (st.requests, st.failed, st.mismatched) == (12, 1, 1)
    assert st.share("v1") == pytest.approx(100 * 8 / 11)
    assert len(st.lat["v2"]) == 3


def test_samples_go_to_the_phase_in_which_they_were_sent():
    bounds = [drill.Boundary("100:0", 0.0, 1.0), drill.Boundary("50:50", 2.0, 1.0), drill.Boundary("100:0", 4.0, 1.0)]
    by = drill.split_by_phase([sample(t) for t in (0.1, 1.99, 2.0, 3.5, 4.2)], bounds)
    assert [len(x) for x in by] == [2, 2, 1]  # a name used twice is still two phases


def test_worst_window_finds_the_most_unfair_window():
    ok = [sample(i, "v1") for i in range(10)] + [sample(10 + i, "v1" if i < 5 else "v2") for i in range(10)]
    assert _worst_window(ok, 10, 70.0) == pytest.approx(30.0)


@pytest.mark.parametrize(
    ("model", "kwargs", "field"),
    [
        (SplitParams, {"weights": [[0, 0]]}, "weights.0 [0, 0]: weights sum to zero"),
        (SplitParams, {"weights": [[70, 300]]}, "weights.0.1"),
        (SplitParams, {"weights": [[70]]}, "weights.0"),
        (SwitchParams, {"weights": [[70, 30]]}, "weights"),
        (RollbackParams, {"canary_steps": [[100, 0]]}, "the last step must send traffic to v2"),
        (RateLimitParams, {"limit": 500, "rates": [100.0, 200.0]}, "at least one must exceed limit 500"),
    ],
)
def test_bad_runner_parameters_name_the_field(model, kwargs, field):
    with pytest.raises(ValidationError) as e:
        model(**kwargs)
    assert field in str(e.value)


def soak_marks(n: int) -> list[dict[str, float]]:
    return [
        {
            "t": 10.0 * (i + 1),
            "host_cpu": 50.0,
            "triton_rss": 100.0,
            "triton_fds": 80,
            "haproxy_rss": 14.0,
            "haproxy_fds": 24,
        }
        for i in range(n)
    ]


def test_soak_verdicts_follow_the_thresholds():
    from workloads.gateway.experiments.soak import SoakParams, _output

    run = load.Run(samples=[sample(t / 10, ms=2.0 if t < 300 else 9.0) for t in range(400)], wall_s=40.0)
    run.samples[5] = sample(0.5, status=503)
    marks = soak_marks(4)
    idle = [dict(marks[0]), dict(marks[0], triton_rss=250.0, triton_fds=90)]  # idle after: +150 MiB, +10 fds
    out = _output(run, marks, idle, SoakParams(), restarts=0)
    verdict = {row[0]: row for row in {t.name: t for t in out.tables}["verdict"].rows}
    assert verdict["error rate (failed / sent)"][1] == pytest.approx(1 / 400)
    assert verdict["error rate (failed / sent)"][3] == "FAIL"  # above 0.001
    assert verdict["p99 drift (last quarter / first quarter)"][1] == pytest.approx(4.5)
    assert verdict["p99 drift (last quarter / first quarter)"][3] == "FAIL"
    assert verdict["triton RSS growth, idle after vs before (MiB)"][1:] == [150.0, 100.0, "FAIL"]
    assert verdict["triton open fds growth, idle after vs before"][1:] == [10, 50, "PASS"]
    assert verdict["haproxy RSS growth, idle after vs before (MiB)"][3] == "PASS"
    windows = {t.name: t for t in out.tables}["windows"].rows
    assert [row[1] for row in windows] == [100, 100, 100, 100]  # requests by send time, one window each


def test_soak_idle_fds_are_back_only_when_every_server_is_within_the_growth():
    """The settle loop after a soak stops as soon as every server's fds are within max_fd_growth of before."""
    from workloads.gateway.experiments.soak import _fds_back

    before = {"triton_rss": 100.0, "triton_fds": 80, "haproxy_rss": 14.0, "haproxy_fds": 24}
    assert _fds_back(before, dict(before, triton_fds=130, haproxy_rss=99.0), 50)
    assert not _fds_back(before, dict(before, haproxy_fds=24 + 259), 50)  # HAProxy's pool not purged yet
    assert not _fds_back(before, dict(before, triton_fds=131), 50)
