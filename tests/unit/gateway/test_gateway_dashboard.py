"""The generated gateway dashboard (dashboards/grafana/gateway.json): what its panels query, in which unit, and that
the d40.e5 runner's split query is the committed panel's query (one source of truth)."""

from __future__ import annotations

import json

import pytest
from pydantic import ValidationError

from ailab.contract.paths import REPO_ROOT
from ailab.observability import dashboards
from ailab.observability.generate import HEADER
from ailab.observability.panels import DASHBOARDS

FILE = REPO_ROOT / "dashboards" / "grafana" / "gateway.json"


def _panels() -> dict[str, dict]:
    return {p["title"]: p for p in json.loads(FILE.read_text())["panels"]}


def test_committed_gateway_dashboard_is_the_generators_output() -> None:
    assert "gateway" in DASHBOARDS
    assert json.loads(FILE.read_text()) == dashboards.build("gateway", HEADER)


def test_split_panel_is_the_canary_share_of_2xx_by_server_in_percent() -> None:
    from workloads.gateway.stack import SPLIT_PANEL

    p = _panels()[SPLIT_PANEL]
    assert p["fieldConfig"]["defaults"]["unit"] == "percent"
    ((t,),) = [p["targets"]]
    assert t["legendFormat"] == "{{server}}"
    expr = t["expr"]
    assert expr.startswith("100 * sum by (server) (rate(haproxy_server_http_responses_total{")
    assert expr.count('proxy="canary", code="2xx"') == 2  # numerator and denominator select the same responses
    assert "ignoring(server) group_left sum(" in expr
    assert '=~"$instance"' in expr and "$__rate_interval" in expr


def test_request_rate_and_weight_panels_are_per_server() -> None:
    panels = _panels()
    rate = panels["Requests by server"]
    weight = panels["Server weight"]
    assert rate["fieldConfig"]["defaults"]["unit"] == "reqps"
    assert "sum by (proxy, server) (rate(haproxy_server_http_responses_total" in rate["targets"][0]["expr"]
    assert weight["targets"][0]["expr"].startswith("haproxy_server_weight{")
    for p in (rate, weight):
        assert p["targets"][0]["legendFormat"] == "{{proxy}}/{{server}}"


def test_gateway_panels_are_scoped_to_the_gateway_platform() -> None:
    # the embedded platform's live test expects data from every "local" panel; HAProxy runs only in gateway weeks
    scopes = {scope for _, scope, _ in dashboards.panel_queries(json.loads(FILE.read_text()))}
    assert scopes == {"gateway"}


def test_runner_split_query_is_read_from_the_committed_panel() -> None:
    from workloads.gateway.experiments.routing import PANEL_QUERY
    from workloads.gateway.stack import SPLIT_PANEL

    assert _panels()[SPLIT_PANEL]["targets"][0]["expr"] == PANEL_QUERY


def test_bad_prometheus_scrape_interval_is_refused_naming_the_field() -> None:
    from workloads.gateway.experiments.routing import MetricsParams

    with pytest.raises(ValidationError) as e:
        MetricsParams(prometheus_scrape="2s")
    assert "prometheus_scrape" in str(e.value) and "'1s' or '5s'" in str(e.value)


def test_unknown_panel_title_names_the_dashboard_and_its_panels() -> None:
    from workloads.gateway.stack import panel_query

    with pytest.raises(KeyError, match=r"gateway\.json: no panel titled 'Split' \(panels: .*Server weight"):
        panel_query("Split")
