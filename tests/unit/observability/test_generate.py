"""The generators: committed artifacts match them, validate with the real promtool/amtool, and bad input fails
naming the file and the rule, panel or receiver."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from ailab.cli import app
from ailab.contract.paths import REPO_ROOT
from ailab.observability import generate, rules, tools
from ailab.observability.dashboards import panel_queries
from ailab.observability.rules import Recording

DASH = REPO_ROOT / "dashboards"


@pytest.fixture
def generated(tmp_path: Path) -> Path:
    """A fresh copy of the generator's output under tmp_path."""
    generate.write(tmp_path)
    return tmp_path


def test_committed_artifacts_match_generators_and_validate() -> None:
    assert generate.check() == []


def test_cli_check_passes_on_the_repository() -> None:
    res = CliRunner().invoke(app, ["dashboards", "--check"])
    assert res.exit_code == 0, res.output
    assert "up to date" in res.stdout


def test_drift_names_the_file(generated: Path) -> None:
    f = generated / "dashboards/prometheus/rules/alerts.yaml"
    f.write_text(f.read_text().replace("> 85", "> 95"))
    assert generate.drift(generated) == [
        "dashboards/prometheus/rules/alerts.yaml: differs from the generator's output (run `lab dashboards` and commit)"
    ]


def test_every_generated_file_says_how_it_was_generated(generated: Path) -> None:
    for rel in generate.artifacts():
        text = (generated / rel).read_text()
        if rel.endswith(".json"):
            assert json.loads(text)["description"] == generate.HEADER, rel
        else:
            assert text.startswith(f"# {generate.HEADER}\n"), rel


def test_bad_rule_expression_names_file_and_rule(generated: Path) -> None:
    f = generated / "dashboards/prometheus/rules/recording.yaml"
    f.write_text(f.read_text().replace("rate(nv_inference_count[1m])", "rate(nv_inference_count[1m]"))
    problems = generate.validate(generated)
    assert any(
        p.startswith("dashboards/prometheus/rules/recording.yaml: group lab-triton.rules rule "
                     "model:nv_inference_batch_size:avg1m:")
        for p in problems
    ), problems  # fmt: skip


def test_cli_check_fails_on_a_bad_rule_from_the_generator(monkeypatch: pytest.MonkeyPatch) -> None:
    def broken() -> dict[str, list[Recording]]:
        good = rules.recording_rules()
        good["lab-triton.rules"].append(Recording("model:broken:rate1m", "sum(rate(x[1m])", "broken"))
        return good

    monkeypatch.setattr(generate, "recording_rules", broken)
    res = CliRunner().invoke(app, ["dashboards", "--check"])
    assert res.exit_code == 1
    assert "dashboards/prometheus/rules/recording.yaml: differs" in res.stderr
    assert "recording.yaml: group lab-triton.rules rule model:broken:rate1m:" in res.stderr.replace("\n", "")


def test_dashboard_query_that_does_not_parse_names_file_and_panel(generated: Path) -> None:
    f = generated / "dashboards/grafana/triton.json"
    model = json.loads(f.read_text())
    model["panels"][2]["targets"][0]["expr"] = "sum by (model) (rate(nv_inference_count{[1m]))"
    f.write_text(json.dumps(model))
    problems = generate.validate(generated)
    assert [p for p in problems if "grafana" in p] and all(
        p.startswith("dashboards/grafana/triton.json: panel 'Success ratio' query") for p in problems
    ), problems


def test_route_to_unknown_receiver_names_file_and_receiver(generated: Path) -> None:
    f = generated / "dashboards/alertmanager/alertmanager.yaml"
    cfg = yaml.safe_load(f.read_text())
    cfg["route"]["routes"][0]["receiver"] = "pager"
    f.write_text(yaml.safe_dump(cfg))
    problems = generate.validate(generated)
    assert (
        "dashboards/alertmanager/alertmanager.yaml: route receiver 'pager': not defined (receivers: critical, warning)"
        in problems
    )
    assert any(p.startswith("dashboards/alertmanager/alertmanager.yaml: amtool check-config") for p in problems)


def test_promtool_rule_tests_pass() -> None:
    rc, out = tools.run("promtool", "test", "rules", *map(str, sorted((DASH / "prometheus/tests").glob("*.yaml"))))
    assert rc == 0, out


def test_promtool_rule_tests_fail_when_a_rule_changes(generated: Path) -> None:
    """The tests are not vacuous: raising the temperature threshold makes the firing case fail."""
    f = generated / "dashboards/prometheus/rules/alerts.yaml"
    f.write_text(f.read_text().replace("DCGM_FI_DEV_GPU_TEMP > 85", "DCGM_FI_DEV_GPU_TEMP > 95"))
    rc, out = tools.run("promtool", "test", "rules", str(generated / "dashboards/prometheus/tests/alerts_test.yaml"))
    assert rc != 0 and "GPUTemperatureHigh" in out


def test_every_alert_has_firing_and_quiet_tests_and_every_record_a_test() -> None:
    tests = yaml.safe_load((DASH / "prometheus/tests/alerts_test.yaml").read_text())["tests"]
    firing: dict[str, int] = {}
    quiet: dict[str, int] = {}
    for t in tests:
        for a in t.get("alert_rule_test", []):
            d = firing if a["exp_alerts"] else quiet
            d[a["alertname"]] = d.get(a["alertname"], 0) + 1
    alerts = [a.alert for g in rules.alert_rules().values() for a in g]
    assert sorted(firing) == sorted(alerts) == sorted(quiet)
    rec = yaml.safe_load((DASH / "prometheus/tests/recording_test.yaml").read_text())["tests"]
    tested = {e["expr"] for t in rec for e in t["promql_expr_test"]}
    assert tested == {r.record for g in rules.recording_rules().values() for r in g}


def test_configs_pass_promtool_and_amtool() -> None:
    for f in ("prometheus.yaml", "kubernetes-sd.yaml"):
        rc, out = tools.check_config(DASH / "prometheus" / f)
        assert rc == 0, f"{f}: {out}"
    rc, out = tools.run("amtool", "check-config", str(DASH / "alertmanager/alertmanager.yaml"))
    assert rc == 0, out


def test_alerts_carry_severity_summary_and_runbook() -> None:
    for f in ("alerts.yaml",):
        for g in yaml.safe_load((DASH / "prometheus/rules" / f).read_text())["groups"]:
            for r in g["rules"]:
                assert r["labels"]["severity"] in ("critical", "warning"), r["alert"]
                assert r["annotations"]["summary"] and r["annotations"]["runbook"], r["alert"]


def test_dashboards_have_units_variables_and_datasource_on_every_panel() -> None:
    for f in sorted((DASH / "grafana").glob("*.json")):
        model = json.loads(f.read_text())
        names = [v["name"] for v in model["templating"]["list"]]
        assert names[:2] == ["datasource", "instance"], f.name
        for p in model["panels"]:
            assert p["fieldConfig"]["defaults"].get("unit"), f"{f.name}: {p['title']}"
            assert p["datasource"]["uid"] == "${datasource}", f"{f.name}: {p['title']}"
            assert p["targets"], f"{f.name}: {p['title']}"
        assert panel_queries(model)


def test_triton_dashboard_defines_batch_size_as_triton_does() -> None:
    model = json.loads((DASH / "grafana/triton.json").read_text())
    batch = next(p for p in model["panels"] if p["title"] == "Average batch size")
    expr = batch["targets"][0]["expr"]
    assert "nv_inference_count" in expr and "/ sum by (model) (rate(nv_inference_exec_count" in expr


def test_bad_threshold_is_rejected_naming_the_field() -> None:
    with pytest.raises(ValueError, match=r"p99_threshold_s -1.0: must be > 0 seconds"):
        rules.alert_rules(-1.0)


def test_local_render_fills_targets_and_drill_for(tmp_path: Path) -> None:
    from ailab.observability.scrape import Targets

    cfg = generate.render_local(
        tmp_path, Targets(jobs={"triton": ["127.0.0.1:1234"]}), scrape_interval="1s", alert_for="0s"
    )
    data = yaml.safe_load(cfg.read_text())
    assert data["scrape_configs"][0] == {"job_name": "triton", "static_configs": [{"targets": ["127.0.0.1:1234"]}]}
    alerts = yaml.safe_load((tmp_path / "rules/alerts.yaml").read_text())
    assert {r["for"] for g in alerts["groups"] for r in g["rules"]} == {"0s"}
    rc, out = tools.check_config(cfg)
    assert rc == 0, out
