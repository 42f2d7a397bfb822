"""Bad configuration of the scale services is refused before anything starts, naming the option.

The specs are built for real (config rendered, `promtool check config` and `victoria-metrics -dryRun` run); no
server is started, so nothing is mocked. The live checks against a running child are in
tests/integration/monitoring_scale/.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from ailab.local.registry import PlatformError, build_spec
from ailab.local.services import prometheus, prometheus_global
from ailab.local.spec import PlatformContext


def ctx(tmp_path: Path, **options: object) -> PlatformContext:
    return PlatformContext(week=8, state_dir=tmp_path, free_ports=True, options={"prometheus.scrape": [], **options})


def test_prometheus_retention_below_the_scrape_interval_is_refused(tmp_path: Path) -> None:
    c = ctx(tmp_path, **{"prometheus.scrape_interval": "15s", "prometheus.retention": "10s"})
    with pytest.raises(PlatformError, match=r"prometheus.retention '10s': below the scrape interval 15s"):
        build_spec("prometheus", c)


def test_prometheus_retention_that_is_not_a_duration_is_refused(tmp_path: Path) -> None:
    with pytest.raises(PlatformError, match=r"prometheus.retention '2 days': not a duration"):
        build_spec("prometheus", ctx(tmp_path, **{"prometheus.retention": "2 days"}))


@pytest.mark.parametrize(
    "url", ["http://10.0.0.5:8428/api/v1/write", "http://example.org/api/v1/write", "ftp://127.0.0.1/x"]
)
def test_prometheus_remote_write_off_this_host_is_refused(tmp_path: Path, url: str) -> None:
    c = ctx(tmp_path, **{"prometheus.remote_write": ["victoriametrics", url]})
    with pytest.raises(PlatformError, match=r"prometheus.remote_write\[1\] .*not a loopback URL"):
        build_spec("prometheus", c)


def test_prometheus_remote_write_to_victoriametrics_is_in_the_checked_config(tmp_path: Path) -> None:
    c = ctx(tmp_path, **{"prometheus.remote_write": ["victoriametrics", "http://[::1]:9/api/v1/write"]})
    spec = build_spec("prometheus", c)
    cfg = yaml.safe_load(Path(spec.info["config"]).read_text())
    vm_port = c.ports["victoriametrics.http"]
    assert [w["url"] for w in cfg["remote_write"]] == [
        f"http://127.0.0.1:{vm_port}/api/v1/write",
        "http://[::1]:9/api/v1/write",
    ]
    assert "--storage.tsdb.retention.time=2d" in spec.argv


def test_prometheus_config_promtool_rejects_is_refused(tmp_path: Path) -> None:
    bad = {"groups": [{"name": "g", "rules": [{"record": "job:x:rate1m", "expr": "sum(rate(x[1m]"}]}]}
    with pytest.raises(PlatformError, match="promtool check config"):
        build_spec("prometheus", ctx(tmp_path, **{"prometheus.extra_rules": {"bad.yaml": bad}}))


def test_durations_parse_like_prometheus() -> None:
    assert prometheus.duration_s("f", "1h30m") == 5400
    assert prometheus.duration_s("f", "2d") == 172800
    assert prometheus.duration_s("f", "500ms") == 0.5


def test_expr_labels_reads_grouping_and_matchers_not_metric_names_or_strings() -> None:
    e = 'sum by (route, le) (rate(m{job="a", path=~"x{y}"}[5m])) / on(instance) group_left(zone) n'
    assert prometheus.expr_labels(e) == {"route", "le", "job", "path", "instance", "zone"}


def test_recording_rule_with_an_unknown_label_is_refused_naming_the_rule() -> None:
    rules = {"r.yaml": {"groups": [{"name": "g", "rules": [{"record": "a:b:c", "expr": "sum by (pood) (up)"}]}]}}
    with pytest.raises(PlatformError, match=r"prometheus_global.rules r.yaml group 'g' rule 'a:b:c'.*\['pood'\]"):
        prometheus.unknown_rule_labels("prometheus_global.rules", rules, {"job", "instance", "pod"})
    prometheus.unknown_rule_labels("prometheus_global.rules", rules, {"pood"})  # known: accepted


@pytest.mark.parametrize(
    ("sel", "why"),
    [
        ('{job=~".*"}', "every matcher also matches the empty label"),
        ('{job=""}', "every matcher also matches the empty label"),
        ("sum(up)", "not a series selector"),
        ('{job="a"', "not a series selector"),
        ("", "not a series selector"),
    ],
)
def test_federation_selector_that_selects_nothing_is_refused(tmp_path: Path, sel: str, why: str) -> None:
    c = ctx(tmp_path, **{"prometheus_global.match": ['{job="prometheus"}', sel]})
    with pytest.raises(PlatformError, match=rf"prometheus_global.match\[1\] .*{why}"):
        build_spec("prometheus_global", c)


def test_federation_match_must_be_a_list(tmp_path: Path) -> None:
    with pytest.raises(PlatformError, match=r"prometheus_global\.match"):
        build_spec("prometheus_global", ctx(tmp_path, **{"prometheus_global.match": "up"}))


def test_global_retention_and_remote_write_are_checked(tmp_path: Path) -> None:
    c = ctx(tmp_path, **{"prometheus_global.retention": "5s", "prometheus_global.scrape_interval": "15s"})
    with pytest.raises(PlatformError, match=r"prometheus_global\.retention '5s'"):
        build_spec("prometheus_global", c)
    c = ctx(tmp_path, **{"prometheus_global.remote_write": ["http://192.168.1.1/w"]})
    with pytest.raises(PlatformError, match=r"prometheus_global.remote_write\[0\]"):
        build_spec("prometheus_global", c)


def test_global_config_federates_the_child_with_its_selectors(tmp_path: Path) -> None:
    c = ctx(tmp_path)
    spec = build_spec("prometheus_global", c)  # the child is not running: the live checks wait in the probe
    cfg = yaml.safe_load(Path(spec.info["config"]).read_text())
    job = cfg["scrape_configs"][0]
    assert job["metrics_path"] == "/federate" and job["honor_labels"] is True
    assert job["params"]["match[]"] == prometheus_global.DEFAULT_MATCH
    assert job["static_configs"][0]["targets"] == [f"127.0.0.1:{c.ports['prometheus.http']}"]
    assert spec.depends_on == ("prometheus",) and callable(spec.ready)


def test_victoriametrics_retention_below_a_day_is_refused(tmp_path: Path) -> None:
    with pytest.raises(PlatformError, match=r"victoriametrics.retention '12h': below VictoriaMetrics' minimum"):
        build_spec("victoriametrics", ctx(tmp_path, **{"victoriametrics.retention": "12h"}))


def test_victoriametrics_flags_are_checked_by_the_binary(tmp_path: Path) -> None:
    with pytest.raises(PlatformError, match="victoria-metrics -dryRun"):
        build_spec("victoriametrics", ctx(tmp_path, **{"victoriametrics.args": ["-noSuchFlag=1"]}))
    spec = build_spec("victoriametrics", ctx(tmp_path))
    assert any(a.startswith("-httpListenAddr=127.0.0.1:") for a in spec.argv)
    assert f"-storageDataPath={tmp_path / 'data' / 'victoriametrics'}" in spec.argv
