"""d18.e4's runner as a quick run calls it, on a real tritonserver and a real Prometheus scraping every 500 ms: waiting
for the next scrape after each 1 s step (instead of two fixed scrape intervals) must still leave every step's requests
in Prometheus, so the dashboard's panel queries agree with what the load generator sent. And the quick pool's own
Prometheus, started when the run begins: lent with its spare target to the first experiment, which the server's
metrics port takes, and to a later one without it. Nothing is mocked."""

from __future__ import annotations

from pathlib import Path

import psutil
import pytest

from ailab.contract import Context
from ailab.contract.ports import SPARE_TARGET
from ailab.local.pool import PlatformPool
from ailab.runner import local_context, local_platform
from workloads.multimodel.experiments.curves import CurvesParams, latency_curves
from workloads.multimodel.observe import observed
from workloads.serving.repository import mlp_spec

pytestmark = pytest.mark.integration


def test_next_scrape_settle_leaves_each_steps_requests_in_prometheus(tmp_path: Path):
    ctx = Context("d18.e4", "cpu", True, tmp_path, platform=local_platform)
    p = CurvesParams(steps=[0, 2], step_s=1.0, scrape_interval="500ms", warmup_s=0.25, settle="next_scrape")
    out = latency_curves(ctx, p)
    rows = next(t for t in out.tables if t.name == "per_step").rows
    loaded = [r for r in rows if r[2] != "idle"]
    assert [(r[0], r[1]) for r in loaded] == [(0, "small"), (1, "small"), (1, "large")]
    for step, model, _load, served, *_client, server_ms, queue_ms, execs, _scaled, errors in loaded:
        assert errors == "none" and served > 0, (step, model)
        # the panels evaluated right after the step saw its requests: a latency and a queue time, not "no data"
        assert isinstance(server_ms, float) and server_ms > 0, (step, model, server_ms)
        assert isinstance(queue_ms, float) and queue_ms >= 0, (step, model, queue_ms)
        assert execs > 0, (step, model)


def test_the_runs_prometheus_is_lent_with_its_spare_target_then_without_and_stopped_at_close(tmp_path: Path):
    ports: list[int] = []
    with PlatformPool(prestart=["prometheus"]) as pool:
        for exp in ("t.e1", "t.e2"):
            ctx = local_context(exp, tmp_path / exp, quick=True, pool=pool)
            # observed() returns once Prometheus holds a sample of this very server (its instance label)
            with observed(ctx, [mlp_spec("mlp")], scrape_interval="500ms") as (srv, prom):
                ports.append(int(srv.platform.address("triton", "metrics").rsplit(":", 1)[1]))
                assert prom.value(f'up{{instance="127.0.0.1:{ports[-1]}"}}') == 1.0
            assert any("started when the run began" in n for n in pool.reused(exp)), pool.reused(exp)
        (prom_pid,) = [pid for pid in pool.pids() if psutil.Process(pid).name() == "prometheus"]
        spare = next(Path(d) for d in pool._dirs)  # where the pool keeps its Prometheus state
        named = (spare / "prometheus" / "targets" / SPARE_TARGET).read_text()
    assert f"127.0.0.1:{ports[0]}" in named, "the first experiment's server took the spare target's port"
    assert ports[1] != ports[0], "the spare is claimed once; the second server got a port of its own"
    assert not psutil.pid_exists(prom_pid) or psutil.Process(prom_pid).status() == psutil.STATUS_ZOMBIE
    assert not spare.exists(), "the pool's Prometheus state dir outlived the run"


def test_an_unknown_service_to_prestart_is_refused_naming_the_allowed_ones():
    with pytest.raises(ValueError, match=r"prestart \['grafana'\]: allowed prometheus"):
        PlatformPool(prestart=["grafana"])
