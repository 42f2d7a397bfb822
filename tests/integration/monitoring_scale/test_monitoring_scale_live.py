"""The scale services as real processes: the global Prometheus federates the child's series, refuses a selector
that selects nothing on the running child and a recording rule with a label the child lacks, and VictoriaMetrics
answers the same PromQL as Prometheus on the same samples. Nothing is mocked."""

from __future__ import annotations

import json
import os
import signal
import time
from pathlib import Path

import pytest

from ailab.local.platform import Platform, status
from ailab.local.registry import PlatformError
from workloads.monitoring_scale import stores
from workloads.monitoring_scale.federation import federated_equal
from workloads.monitoring_scale.synth import REQ, Fleet
from workloads.observability.prom import Prom

pytestmark = pytest.mark.integration


def test_global_prometheus_federates_the_childs_series(tmp_path: Path) -> None:
    opts = {
        "prometheus.scrape": [],
        "prometheus.scrape_interval": "1s",
        "prometheus_global.match": ['{job="prometheus"}'],
        "prometheus_global.scrape_interval": "1s",
    }
    with Platform(services=["prometheus", "prometheus_global"], state_dir=tmp_path, free_ports=True, options=opts) as p:
        child, glob = Prom(p.url("prometheus")), Prom(p.url("prometheus_global"))
        glob.wait_for('count({job="prometheus"})', 30, lambda v: v > 100)
        # the child's own series, with the child's job label (honor_labels) and its external label
        assert glob.query('prometheus_build_info{job="prometheus", lab="ailab"}')
        compared, equal = federated_equal(child, glob, "prometheus_tsdb_head_series", "job")
        assert compared == 1 and equal == 1
        assert glob.value('count({job="prometheus"})') <= child.value('count({job="prometheus"})')


def test_global_refuses_selectors_and_rule_labels_the_running_child_does_not_have(tmp_path: Path) -> None:
    child_opts = {"prometheus.scrape": [], "prometheus.scrape_interval": "1s"}
    with Platform(services=["prometheus"], state_dir=tmp_path, free_ports=True, options=child_opts) as p:
        Prom(p.url("prometheus")).wait_for("up", 30)
        nothing = {"prometheus_global.match": ['{job="prometheus"}', '{job="no-such-job"}'],
                   "prometheus_global.match_wait_s": 2}  # fmt: skip
        g = Platform(services=["prometheus_global"], state_dir=tmp_path, free_ports=True, options=nothing)
        with pytest.raises(PlatformError, match=r"prometheus_global.match\[1\] .*selects no series"):
            g.up()
        rule = {"groups": [{"name": "g", "rules": [{"record": "zone:up:sum", "expr": "sum by (zone) (up)"}]}]}
        bad_rule = {"prometheus_global.match": ['{job="prometheus"}'], "prometheus_global.rules": {"r.yaml": rule}}
        g = Platform(services=["prometheus_global"], state_dir=tmp_path, free_ports=True, options=bad_rule)
        with pytest.raises(PlatformError, match=r"rule 'zone:up:sum': unknown label\(s\) \['zone'\]"):
            g.up()
        assert "prometheus_global" not in {r["name"] for r in status(tmp_path)}  # nothing left running


def unnamed(values: dict[str, list]) -> dict[str, list]:
    """Series keyed without `__name__`: VictoriaMetrics 1.79 keeps the metric name on `*_over_time` results where
    PromQL drops it (the only label difference seen; the values are compared exactly)."""
    out = {}
    for key, pts in values.items():
        labels = json.loads(key)
        labels.pop("__name__", None)
        out[json.dumps(labels, sort_keys=True)] = pts
    return out


def test_victoriametrics_answers_the_same_promql_as_prometheus_on_the_same_samples(tmp_path: Path) -> None:
    fleet = Fleet(instances=3, routes=2)
    end = (time.time() // 3600 - 1) * 3600
    start = end - 6 * 3600
    stores.backfill_prometheus(fleet.series(), tmp_path / "data" / "prometheus", start, end, 60, tmp_path / "om")
    opts = {"prometheus.scrape": [], "prometheus.retention": "30d", "prometheus.remote_write": ["victoriametrics"],
            "victoriametrics.latency_offset": "1s"}  # fmt: skip
    with Platform(services=["prometheus", "victoriametrics"], state_dir=tmp_path, free_ports=True, options=opts) as p:
        prom, vm = p.url("prometheus"), p.url("victoriametrics")
        stores.import_victoriametrics(vm, fleet.series(), start, end, 60)
        for expr in (
            f"sum by (route) ({REQ})",
            f"max by (instance) ({REQ})",
            f'{REQ}{{route="/r1"}} / 2',
            f"max_over_time({REQ}[10m])",
        ):
            a = stores.query_range(prom, expr, start + 3600, end - 120, 300)
            b = stores.query_range(vm, expr, start + 3600, end - 120, 300)
            assert a.series == b.series > 0 and a.points == b.points > 0, expr
            theirs = unnamed(b.values)
            for key, pts in unnamed(a.values).items():
                assert [t for t, _ in theirs[key]] == [t for t, _ in pts], (expr, key)
                assert [v for _, v in theirs[key]] == pytest.approx([v for _, v in pts], rel=1e-9), (expr, key)
        # live samples travel over remote_write too
        Prom(vm).wait_for('up{job="prometheus"}', 30)


def test_killed_scale_services_are_restarted_and_counted(tmp_path: Path) -> None:
    opts = {"prometheus.scrape": [], "prometheus_global.match": ['{job="prometheus"}']}
    names = ["prometheus", "prometheus_global", "victoriametrics"]
    with Platform(services=names, state_dir=tmp_path, free_ports=True, options=opts, supervise=True) as p:
        for name in ("prometheus_global", "victoriametrics"):
            first = p.record(name)
            os.kill(first.pid, signal.SIGKILL)
            deadline = time.monotonic() + 60
            while p.restarts(name) == 0 and time.monotonic() < deadline:
                time.sleep(0.2)
            rec = p.record(name)
            assert rec.restarts == 1 and rec.pid != first.pid and rec.ports == first.ports
        Prom(p.url("victoriametrics")).get("/api/v1/labels")  # answering again on the same port
