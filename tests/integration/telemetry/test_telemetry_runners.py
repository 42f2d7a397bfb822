"""The d76 runners as `lab run` calls them, on small parameters, against the real local platform."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from ailab.contract import Context, Skip
from ailab.local.platform import Platform
from workloads.telemetry.experiments.logs import LogsParams, collected_logs
from workloads.telemetry.experiments.otel import otel_collector
from workloads.telemetry.experiments.tracing import TracingParams, request_trace

pytestmark = pytest.mark.integration


def _ctx(tmp_path: Path, exp: str, factory: Callable[..., Platform]) -> Context:
    return Context(experiment_id=exp, device="cpu", quick=True, workdir=tmp_path, log=lambda _m: None, platform=factory)


def test_logs_runner_queries_every_request_back(
    tmp_path: Path, telemetry_platform_factory: Callable[..., Platform]
) -> None:
    out = collected_logs(_ctx(tmp_path, "d76.e2", telemetry_platform_factory), LogsParams(requests=60, concurrency=4))
    t = {x.name: x for x in out.tables}
    rows = {(r[0], r[1]): r for r in t["queried_back"].rows}
    assert rows[("no_such_model", 404)][2] == 6 and sum(r[2] for r in rows.values()) == 60
    for (model, status), r in rows.items():
        assert r[3] == r[2], f"{model} {status}: {r[3]} gateway records for {r[2]} requests"
        if status == 200:
            assert r[4] == r[2], f"{model}: Triton logged {r[4]} request ids for {r[2]} requests"
    assert {r[0] for r in t["lines"].rows} == {"triton", "haproxy"}
    assert all(r[3] == 0 for r in t["lines"].rows), t["lines"].rows
    (lag,) = t["delivery_lag"].rows
    assert lag[0] == 60 and lag[2] <= lag[3] <= lag[4]  # every access line timed; p50 <= p99 <= max


def test_tracing_runner_charts_both_models(tmp_path: Path, telemetry_platform_factory: Callable[..., Platform]) -> None:
    out = request_trace(_ctx(tmp_path, "d76.e3", telemetry_platform_factory), TracingParams(requests=5, warmup=1))
    assert [s.kind for s in out.series] == ["timeline", "timeline"]
    lanes = set(out.series[1].lines)
    assert {"pipeline · request", "normalize · infer", "linear · infer"} <= lanes
    traced = {r[0]: r for r in out.tables[0].rows}
    assert traced["linear"][2] == 5 and traced["pipeline"][2] == 5 and traced["pipeline"][3] == 2.0


def test_otel_runner_skips_with_what_it_looked_for(tmp_path: Path) -> None:
    with pytest.raises(Skip, match="otelcol"):
        otel_collector(Context(experiment_id="d76.e1", device="cpu", quick=True, workdir=tmp_path))
