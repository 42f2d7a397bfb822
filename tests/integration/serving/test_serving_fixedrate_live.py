"""d32.e1's fixed offered rate and server-counted numbers against a real tritonserver (CPU): the lab generator's
window reading equals its own count, the sampled reading (perf_analyzer's method) agrees with it, and a short run of
the runner offers both drivers the rate it derives from the closed loop and sets each run beside Triton's counts."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from workloads.serving import harness, loadgen
from workloads.serving.common import variant
from workloads.serving.experiments.drivers import DriversParams, drivers
from workloads.serving.servercount import Sampler, from_window

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def mlp_server(make_context, tmp_path_factory) -> Iterator[harness.Served]:
    ctx = make_context("fixedrate-tests", tmp_path_factory.mktemp("fixedrate"))
    with harness.serve(ctx, [variant("mlp", preferred=(8, 16), delay_us=1000)]) as srv:
        yield srv


def test_window_and_sampled_server_counts_agree_with_the_generator(mlp_server):
    spec = loadgen.LoadSpec(
        url=mlp_server.address("http"), model="mlp", protocol="http", concurrency=4, warmup_s=0.5,
        duration_s=1.5, metrics_url=mlp_server.metrics_url,
    )  # fmt: skip
    with Sampler(mlp_server.metrics_url, "mlp", period_s=0.05) as sampler:
        res = loadgen.run(spec)
    assert res.ok > 100 and not res.errors
    window = from_window(res.server, res.window_s)
    assert window is not None
    # the server counts the generator's requests plus at most the 4 in flight when the window opened
    assert res.ok <= window.requests <= res.ok + spec.concurrency
    assert 0 < window.request_us / 1e3 < res.latency_ms["mean"]  # the server's time is inside the client's
    sampled = sampler.count()
    assert sampled is not None and sampled.seconds > 1.0  # warm-up and window, without the idle edges
    assert abs(sampled.throughput_rps / window.throughput_rps - 1) < 0.15


def test_short_run_offers_both_drivers_the_fixed_rate_and_counts_every_run(make_context, tmp_path):
    p = DriversParams(
        concurrency=[4], processes=[1], protocols=["http"], layouts=["shared"], duration_s=1.0,
        pa_request_count=200, client_variants=[], open_rate_fractions=[0.25], open_duration_s=1.0, lab_up=False,
        host_windows=2, host_window_s=0.2,
    )  # fmt: skip
    out = drivers(make_context("d32.e1", tmp_path), p)
    tables = {t.name: t for t in out.tables}
    drivers_rows = tables["drivers"].rows
    closed = [r[5] for r in drivers_rows]
    # one run of each driver: perf_analyzer in both modes (synchronous, and --async from one thread)
    assert sorted(r[2] for r in drivers_rows) == ["lab loadgen", "perf_analyzer", "perf_analyzer async"]
    assert min(closed) > 0
    runs = tables["open_loop"].rows
    assert sorted(r[4] for r in runs) == ["lab loadgen", "perf_analyzer"]
    offered = runs[0][3]
    # 25 % of the closed loop's throughput, taken unrounded; the table's closed column is rounded to 0.1
    assert abs(offered - 0.25 * max(closed)) <= 0.1
    for r in runs:
        assert r[3] == offered and r[14] in ("none", "")  # no failed requests
        assert 0.7 < r[7] / offered < 1.3, r  # far under capacity, the achieved rate is the offered one

    (agree,) = tables["open_loop_agreement"].rows
    ratios, throughput_verdict, percentile_verdict = agree[5:9], agree[9], agree[10]
    assert throughput_verdict == ("MET" if 90 <= ratios[0] <= 110 else "NOT MET")
    assert percentile_verdict == ("MET" if all(90 <= x <= 110 for x in ratios[1:]) else "NOT MET")
    assert agree[11] == round(100 * runs[[r[4] for r in runs].index("lab loadgen")][7] / offered, 1)
    closed_agree = tables["agreement"].rows
    # the lab against each mode, then perf_analyzer's --async mode against its synchronous one
    assert sorted((r[3], r[4]) for r in closed_agree) == [
        ("lab loadgen", "perf_analyzer"),
        ("lab loadgen", "perf_analyzer async"),
        ("perf_analyzer async", "perf_analyzer"),
    ]
    for r in closed_agree:
        assert r[9] > 0  # Triton's own mean latency under each driver, compared
        assert r[10] == r[11] == 0.0  # one repeat each: no spread
        assert r[12] == ("MET" if 90 <= r[5] <= 110 else "NOT MET")
        assert r[14] in ("yes", "no") and (r[5] == 100.0 or r[14] == "yes")  # one run each: apart unless equal

    counted = tables["server_counted"].rows
    assert {(r[2].split(",")[0], r[3]) for r in counted} == {
        ("closed", "lab loadgen"), ("closed", "perf_analyzer"), ("closed", "perf_analyzer async"),
        ("open", "lab loadgen"), ("open", "perf_analyzer"),
    }  # fmt: skip
    for r in counted:
        server_rps, pct, driver_ms, server_ms = r[6], r[7], r[8], r[9]
        assert server_rps > 0 and 80 < pct < 120, r  # the server counted what the driver counted
        assert 0 < server_ms < driver_ms, r  # the server's part of each request is inside the driver's
    assert any(n.startswith("±10 % agreement with perf_analyzer at a fixed offered rate") for n in out.notes)
    speed = tables["host_speed"].rows  # the host-speed probe: every CPU, two windows each, fastest <= median <= slowest
    assert [r[0] for r in speed] == sorted(os.sched_getaffinity(0))
    assert all(r[1] == 2 and 0 < r[4] <= r[3] <= r[5] and r[6] >= 0 for r in speed), speed
    assert any(n.startswith("Host speed: the same fixed CPU work") for n in out.notes)
