"""Real HAProxy 2.6 in front of a real tritonserver (two versions of the MLP), started once for the module through
the same Context/platform path `lab run` uses. Nothing is mocked; each test sends a bounded burst to 127.0.0.1.

The spec is the canary one (70/30) plus a frontend limited to 20 admitted requests/s."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest

from ailab.contract import Context
from ailab.local import state
from ailab.local.platform import Platform
from ailab.local.registry import PlatformError
from ailab.local.services import haproxy
from ailab.runner import local_platform
from workloads.gateway import drill, load, runtime
from workloads.gateway.stack import CANARY, Gateway, canary_spec, gateway

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(haproxy.binary() is None, reason="haproxy not installed (apt-get install haproxy)"),
]

LIMIT = 20


@pytest.fixture(scope="module")
def gw(tmp_path_factory) -> Iterator[Gateway]:
    spec = canary_spec({1: 70, 2: 30})
    spec["frontends"].append({"name": "limited", "default_backend": "triton_v1", "rate_limit": {"requests": LIMIT}})
    ctx = Context(
        experiment_id="test", device="cpu", quick=True, workdir=tmp_path_factory.mktemp("gw"), platform=local_platform
    )
    with gateway(ctx, spec) as g:
        yield g


async def burst(url: str, n: int, concurrency: int = 8) -> load.Run:
    async with load.Client(url) as c:
        return await load.closed_loop(c, concurrency, n, 60)


def test_split_follows_the_weights_measured_from_responses(gw):
    runtime.set_weights_now(gw.socket, CANARY, {"v1": 70, "v2": 30})
    st = drill.stats(asyncio.run(burst(gw.url("api"), 3000)).samples)
    assert st.failed == 0
    assert st.share("v1") == pytest.approx(70.0, abs=2.0)
    assert st.by_version["1"] == st.by_server["v1"] and st.mismatched == 0  # the body's model_version agrees


def test_weight_change_under_load_drops_no_request(gw):
    """No request fails across a weight change, and the new split holds once HAProxy has re-placed its servers: the
    first 2 x concurrency answers after the change are transitional (fwrr re-queues each server at its new weight,
    and on a loaded host (CI) those few answers skewed a short phase's share by 5 points)."""
    phases = [drill.Phase("70:30", {1: 70, 2: 30}, 1.5), drill.Phase("50:50", {1: 50, 2: 50}, 3.0)]

    async def go() -> tuple[load.Run, list[drill.Boundary]]:
        async with load.Client(gw.url("api")) as c:
            return await drill.run_phases(c, gw.socket, phases, 8, 50_000)

    run, bounds = asyncio.run(go())
    by = drill.split_by_phase(run.samples, bounds)
    assert sum(1 for s in run.samples if s.status != 200) == 0
    steady = sorted(by[1], key=lambda s: s.t_s)[2 * 8 :]
    assert len(steady) >= 100, f"only {len(steady)} answers after the change: the host is too slow for this check"
    assert drill.stats(steady).share("v1") == pytest.approx(50.0, abs=3.0)
    assert runtime.get_weight(gw.socket, CANARY, "v1") == 50


def test_exporter_reports_weights_and_per_server_responses(gw):
    runtime.set_weights_now(gw.socket, CANARY, {"v1": 60, "v2": 40})
    before = runtime.scrape(gw.metrics_url)
    asyncio.run(burst(gw.url("api"), 500))
    after = runtime.scrape(gw.metrics_url)
    assert runtime.server_values(after, "haproxy_server_weight", CANARY) == {"v1": 60.0, "v2": 40.0}
    resp = "haproxy_server_http_responses_total"
    d = {
        s: v - runtime.server_values(before, resp, CANARY, code="2xx").get(s, 0)
        for s, v in runtime.server_values(after, resp, CANARY, code="2xx").items()
    }
    assert d["v1"] + d["v2"] == 500
    assert d["v1"] == pytest.approx(300, abs=10)


def test_runtime_api_refuses_an_unknown_server(gw):
    with pytest.raises(runtime.GatewayAPIError, match="No such server"):
        runtime.set_weights_now(gw.socket, CANARY, {"v9": 10})


def test_requests_over_the_limit_get_429_fast(gw):
    run = asyncio.run(burst(gw.url("limited"), 300, concurrency=4))
    ok = [s for s in run.samples if s.status == 200]
    refused = [s for s in run.samples if s.status == 429]
    assert len(ok) + len(refused) == 300
    assert refused, "a burst far above the limit must be refused in part"
    assert len(ok) <= LIMIT * (run.wall_s + 2)  # admitted stays near the limit (sliding one-second window)
    assert load.percentile([s.latency_ms for s in refused], 50) < load.percentile([s.latency_ms for s in ok], 50)


def test_bad_spec_is_refused_before_haproxy_starts(tmp_path):
    spec = canary_spec({1: 70, 2: 30})
    spec["backends"][0]["servers"][1]["weight"] = 300
    p = Platform(services=["haproxy"], state_dir=tmp_path / "st", free_ports=True, options={"haproxy.spec": spec})
    with pytest.raises(PlatformError, match=r"backends\.0\.servers\.1\.weight"):
        p.up()
    assert "haproxy" not in state.services(tmp_path / "st")
