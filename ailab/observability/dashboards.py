"""Grafana dashboards built with grafana-foundation-sdk from the panel data in panels.py."""

from __future__ import annotations

import json
from typing import Any

from grafana_foundation_sdk.builders import dashboard, prometheus, stat, timeseries
from grafana_foundation_sdk.cog.encoder import JSONEncoder
from grafana_foundation_sdk.models.dashboard import DataSourceRef, GridPos

from ailab.observability.panels import DASHBOARDS, Panel

DS = DataSourceRef(type_val="prometheus", uid="${datasource}")
SCOPE_TAG = {"local": "", "gpu": "[gpu-only] ", "cluster": "[cluster-only] ", "gateway": "[gateway-only] "}
WIDTH, HEIGHT = 12, 8  # two panels per row


def _panel(p: Panel, pid: int, x: int, y: int) -> Any:
    builder = stat.Panel() if p.kind == "stat" else timeseries.Panel()
    b = (
        builder.id(pid)
        .title(p.title)
        .description(SCOPE_TAG[p.scope] + p.description)
        .unit(p.unit)
        .datasource(DS)
        .grid_pos(GridPos(h=HEIGHT, w=WIDTH, x=x, y=y))
    )
    for i, query in enumerate(p.queries):
        b = b.with_target(prometheus.Dataquery().expr(query.expr).legend_format(query.legend).ref_id(chr(ord("A") + i)))
    return b


def build(name: str, generated_by: str) -> dict[str, Any]:
    """The dashboard called `name` (a key of panels.DASHBOARDS) as Grafana JSON model."""
    title, panels, instance_metric, has_model = DASHBOARDS[name]
    d = (
        dashboard.Dashboard(f"AI Infra Lab / {title}")
        .uid(f"ailab-{name}")
        .description(generated_by)
        .tags(["ailab", name])
        .refresh("10s")
        .time("now-15m", "now")
        .timezone("browser")
        .with_variable(dashboard.DatasourceVariable("datasource").label("Data source").type("prometheus"))
        .with_variable(
            dashboard.QueryVariable("instance")
            .label("Instance")
            .datasource(DS)
            .query(f"label_values({instance_metric}, instance)")
            .multi(True)
            .include_all(True)
            .all_value(".*")
        )
    )
    if has_model:
        d = d.with_variable(
            dashboard.QueryVariable("model")
            .label("Model")
            .datasource(DS)
            .query(f'label_values({instance_metric}{{instance=~"$instance"}}, model)')
            .multi(True)
            .include_all(True)
            .all_value(".*")
        )
    for i, p in enumerate(panels):
        d = d.with_panel(_panel(p, i + 1, (i % 2) * WIDTH, (i // 2) * HEIGHT))
    return json.loads(JSONEncoder(sort_keys=True, indent=2).encode(d.build()))


def panel_queries(model: dict[str, Any]) -> list[tuple[str, str, str]]:
    """(panel title, scope, expr) for every query of a dashboard JSON model; scope from the description tag."""
    out = []
    for p in model.get("panels", []):
        desc = p.get("description", "")
        scope = next((s for s, tag in SCOPE_TAG.items() if tag and desc.startswith(tag)), "local")
        for t in p.get("targets", []):
            out.append((p.get("title", "?"), scope, t.get("expr", "")))
    return out


def concrete(expr: str, rate_interval: str = "1m") -> str:
    """A panel query with Grafana's variables replaced so Prometheus can run it (all instances, all models)."""
    return (
        expr.replace("$__rate_interval", rate_interval)
        .replace('=~"$instance"', '=~".*"')
        .replace('=~"$model"', '=~".*"')
    )
