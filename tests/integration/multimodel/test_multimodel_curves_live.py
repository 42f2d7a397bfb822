"""d18.e4's runner as a quick run calls it, on a real tritonserver and a real Prometheus scraping every 500 ms: waiting
for the next scrape after each 1 s step (instead of two fixed scrape intervals) must still leave every step's requests
in Prometheus, so the dashboard's panel queries agree with what the load generator sent. Nothing is mocked."""

from __future__ import annotations

from pathlib import Path

import pytest

from ailab.contract import Context
from ailab.runner import local_platform
from workloads.multimodel.experiments.curves import CurvesParams, latency_curves

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
