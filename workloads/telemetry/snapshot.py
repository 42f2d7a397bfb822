"""Grafana dashboards as pictures: each panel's own PromQL run against a live Prometheus (`/api/v1/query_range`, the
dashboard's template variables and the panel's unit applied) and drawn with matplotlib, one PNG per panel.

Grafana cannot be installed here; users read dashboards as pictures. Used by `lab dashboards snapshot` (which hands
it the generated dashboard JSON) and by runners (which return the panel data as Series too, so reports draw it):

    shots = snapshot(dashboard_json, "http://127.0.0.1:9090", out_dir, start, end, {"model": "linear"})
    python -m workloads.telemetry.snapshot --dashboard dashboards/grafana/triton.json --prometheus URL -o DIR

Variables applied as Grafana does: `$__rate_interval` = max(step + scrape interval, 4 x scrape interval),
`$__interval` = the step, `$__range`; a dashboard variable is the value given, else its "All" value (`.*`).
"""

from __future__ import annotations

import argparse
import json
import math
import re
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from ailab.contract import Column, Series

MAX_POINTS = 240  # points per series: Grafana picks the step from the panel width in the same way
# Grafana unit id -> (axis unit, factor); "auto-*" units are scaled to the largest value (IEC for bytes)
UNITS: dict[str, tuple[str, float]] = {
    "reqps": ("req/s", 1.0), "ops": ("ops/s", 1.0), "s": ("s", 1.0), "ms": ("ms", 1.0), "µs": ("µs", 1.0),
    "us": ("µs", 1.0), "ns": ("ns", 1.0), "percent": ("%", 1.0), "percentunit": ("%", 100.0), "watt": ("W", 1.0),
    "celsius": ("°C", 1.0), "cps": ("counts/s", 1.0), "short": ("", 1.0), "none": ("", 1.0), "": ("", 1.0),
}  # fmt: skip
TIME = {"s": 1.0, "ms": 1e-3, "µs": 1e-6, "us": 1e-6, "ns": 1e-9}  # Grafana's time unit ids, in seconds
SCALED = {"bytes": ("B", 1024.0, ("", "Ki", "Mi", "Gi", "Ti")), "Bps": ("B/s", 1024.0, ("", "Ki", "Mi", "Gi")),
          "hertz": ("Hz", 1000.0, ("", "k", "M", "G"))}  # fmt: skip


class SnapshotError(RuntimeError):
    """A dashboard or panel could not be rendered; the message names the panel, the query and why."""


@dataclass
class PanelShot:
    """One panel's data and picture: lines {legend: [[unix time s, value in `unit`], ...]}."""

    title: str
    unit: str  # the axis unit after scaling (e.g. "req/s", "MiB")
    kind: str  # timeseries | stat
    queries: list[str]  # the PromQL actually run (variables applied)
    lines: dict[str, list[list[float]]] = field(default_factory=dict)
    png: str = ""
    error: str = ""

    @property
    def points(self) -> int:
        return sum(len(v) for v in self.lines.values())


# --- Prometheus ---------------------------------------------------------------------------------------------------
def _get(prom: str, path: str, params: dict[str, Any]) -> Any:
    url = f"{prom}{path}?{urllib.parse.urlencode(params)}"
    try:
        with urllib.request.urlopen(url, timeout=30) as r:
            body = json.loads(r.read())
    except urllib.error.HTTPError as exc:
        body = json.loads(exc.read() or b"{}")
    except OSError as exc:
        raise SnapshotError(f"Prometheus at {prom}: {exc}") from None
    if body.get("status") != "success":
        raise SnapshotError(f"{params.get('query', path)}: {body.get('errorType')}: {body.get('error')}")
    return body["data"]


def scrape_interval_s(prom: str) -> float:
    """The global scrape interval of the Prometheus at `prom` (its loaded config), s; 15 when unset."""
    cfg = _get(prom, "/api/v1/status/config", {})["yaml"]
    m = re.search(r"^\s+scrape_interval:\s*(\S+)", cfg, re.M)
    return duration_s(m.group(1)) if m else 15.0


def duration_s(text: str) -> float:
    """A Prometheus/Grafana duration (1m30s, 5s, 2h, 500ms) in seconds."""
    parts = re.findall(r"(\d+(?:\.\d+)?)(ms|s|m|h|d|w|y)", text)
    if not parts or "".join(n + u for n, u in parts) != text:
        raise SnapshotError(f"duration {text!r}: expected e.g. 15s, 5m, 1h30m, 500ms")
    mult = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800, "y": 31536000}
    return sum(float(n) * mult[u] for n, u in parts)


def parse_time(text: str, now: float | None = None) -> float:
    """`now`, `now-15m`, unix seconds or ISO 8601 -> unix seconds."""
    now = time.time() if now is None else now
    if text == "now":
        return now
    if text.startswith("now-"):
        return now - duration_s(text[4:])
    try:
        return float(text)
    except ValueError:
        pass
    try:
        t = datetime.fromisoformat(text)
    except ValueError:
        raise SnapshotError(f"time {text!r}: expected now, now-15m, unix seconds or ISO 8601") from None
    return (t if t.tzinfo else t.astimezone()).timestamp()


# --- variables ----------------------------------------------------------------------------------------------------
def _prom_duration(seconds: float) -> str:
    return f"{max(1, round(seconds))}s"


def variables(dashboard: dict[str, Any], given: dict[str, str]) -> dict[str, str]:
    """Value of every template variable: the given one, else the variable's All value, else `.*`."""
    out: dict[str, str] = {}
    names = []
    for v in dashboard.get("templating", {}).get("list", []):
        name = v.get("name", "")
        names.append(name)
        if v.get("type") == "datasource":
            continue
        out[name] = given.get(name, v.get("allValue") or ".*")
    unknown = sorted(set(given) - set(names))
    if unknown:
        raise SnapshotError(f"--var {', '.join(unknown)}: the dashboard has no such variable (has: {', '.join(names)})")
    return out


def apply(expr: str, values: dict[str, str], step_s: float, scrape_s: float, range_s: float) -> str:
    """A panel query with Grafana's built-in and the dashboard's variables replaced."""
    builtins = {
        "__rate_interval": _prom_duration(max(step_s + scrape_s, 4 * scrape_s)),
        "__interval": _prom_duration(step_s),
        "__range": _prom_duration(range_s),
    }
    allv = {**builtins, **values}
    # longest names first, so that $model does not eat $models
    for name in sorted(allv, key=len, reverse=True):
        expr = expr.replace(f"${{{name}}}", allv[name]).replace(f"[[{name}]]", allv[name])
        expr = re.sub(rf"\${re.escape(name)}(?![A-Za-z0-9_])", lambda _m, v=allv[name]: v, expr)
    if m := re.search(r"\$\{?[A-Za-z_]\w*", expr):
        raise SnapshotError(f"query {expr!r}: variable {m.group(0)!r} has no value")
    return expr


def legend(fmt: str, metric: dict[str, str], expr: str) -> str:
    """Grafana's legend format ({{label}}), else the series' labels."""
    if fmt:
        return re.sub(r"\{\{\s*(\w+)\s*\}\}", lambda m: metric.get(m.group(1), ""), fmt).strip() or expr[:40]
    labels = {k: v for k, v in metric.items() if k != "__name__"}
    return "{" + ", ".join(f"{k}={v}" for k, v in sorted(labels.items())) + "}" if labels else expr[:40]


def scale(unit_id: str, peak: float) -> tuple[str, float]:
    """(axis unit, factor to divide values by) for a Grafana unit id and the largest absolute value."""
    if unit_id in TIME and peak > 0:  # Grafana shows durations in the largest unit that keeps the peak >= 1
        seconds = TIME[unit_id]
        peak_s = peak * seconds
        for name, size in (("s", 1.0), ("ms", 1e-3), ("µs", 1e-6), ("ns", 1e-9)):
            if peak_s >= size or name == "ns":
                return name, size / seconds
    if unit_id in SCALED:
        base, step, prefixes = SCALED[unit_id]
        k = 0
        while k + 1 < len(prefixes) and peak >= step ** (k + 1):
            k += 1
        return prefixes[k] + base, step**k
    label, factor = UNITS.get(unit_id, (unit_id, 1.0))
    return label, 1 / factor


# --- panels -------------------------------------------------------------------------------------------------------
def panel_data(
    panel: dict[str, Any], prom: str, start: float, end: float, values: dict[str, str], scrape_s: float
) -> PanelShot:
    """Run every query of `panel` over [start, end]; the lines in the panel's unit (scaled)."""
    range_s = max(end - start, 1.0)
    step = max(scrape_s, math.ceil(range_s / MAX_POINTS))
    raw: dict[str, list[list[float]]] = {}
    queries = []
    for t in panel.get("targets", []):
        expr = apply(t.get("expr", ""), values, step, scrape_s, range_s)
        queries.append(expr)
        res = _get(prom, "/api/v1/query_range", {"query": expr, "start": start, "end": end, "step": step})["result"]
        for s in res:
            name = legend(t.get("legendFormat", ""), s.get("metric", {}), expr)
            while name in raw:
                name += "'"
            pts = [[float(ts), float(v)] for ts, v in s.get("values", []) if math.isfinite(float(v))]
            if pts:
                raw[name] = pts
    peak = max((abs(v) for pts in raw.values() for _, v in pts), default=0.0)
    unit, div = scale(panel.get("fieldConfig", {}).get("defaults", {}).get("unit", ""), peak)
    lines = {k: [[t, v / div] for t, v in pts] for k, pts in raw.items()}
    return PanelShot(panel.get("title", "?"), unit, panel.get("type", "timeseries"), queries, lines)


STYLES = ("-", "--", "-.", ":")


def draw(shot: PanelShot, path: Path, start: float, end: float) -> Path:
    """One panel to a PNG: time on x (HH:MM:SS), the unit on y, the legend beside the axes, never over the data."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.dates as mdates
    import matplotlib.pyplot as plt

    labels = list(shot.lines)
    wide = max((len(x) for x in labels), default=0)
    fig, ax = plt.subplots(figsize=(7.5 + (0.065 * min(wide, 60) if len(labels) > 1 else 0), 3.6), dpi=100)
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    ylabel = f"value ({shot.unit})" if shot.unit else "value"
    if shot.kind == "stat":  # Grafana's stat panel: the last value of each series, big
        last = [(k, pts[-1][1]) for k, pts in shot.lines.items()]
        ax.axis("off")
        for i, (k, v) in enumerate(last[:6]):
            ax.text(0.02, 0.85 - i * 0.16, f"{v:.4g} {shot.unit}  {k}", fontsize=14, transform=ax.transAxes)
        if not last:
            ax.text(0.5, 0.5, "no data", ha="center", va="center", fontsize=14, transform=ax.transAxes)
    else:
        for i, (k, pts) in enumerate(shot.lines.items()):
            xs = [datetime.fromtimestamp(t) for t, _ in pts]
            ax.plot(xs, [v for _, v in pts], STYLES[(i // len(colors)) % len(STYLES)],
                    color=colors[i % len(colors)], linewidth=1.4, label=k)  # fmt: skip
        if not shot.lines:
            ax.text(0.5, 0.5, shot.error or "no data", ha="center", va="center", transform=ax.transAxes, wrap=True)
        ax.set_xlim(datetime.fromtimestamp(start), datetime.fromtimestamp(end))
        ax.xaxis.set_major_formatter(mdates.DateFormatter("%H:%M:%S"))
        ax.set_xlabel("time (local)")
        ax.set_ylabel(ylabel)
        ax.grid(True, alpha=0.3)
        if len(labels) > 1 or (labels and labels[0] != shot.title):
            ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0.0, frameon=False)
    ax.set_title(shot.title, fontsize=10)
    fig.autofmt_xdate(rotation=0, ha="center")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)
    return path


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-") or "panel"


def snapshot(
    dashboard: dict[str, Any],
    prom: str,
    out_dir: Path,
    start: float,
    end: float,
    given: dict[str, str] | None = None,
    panels: list[str] | None = None,
) -> list[PanelShot]:
    """Every panel of `dashboard` (or those titled in `panels`) rendered to out_dir/NN-title.png, plus index.json.

    A query Prometheus rejects is recorded on its panel (error) and drawn as such; the other panels still render.
    """
    if end <= start:
        raise SnapshotError(f"--from/--to: the range is empty ({start} .. {end})")
    values = variables(dashboard, given or {})
    scrape_s = scrape_interval_s(prom)
    chosen = [p for p in dashboard.get("panels", []) if p.get("type") != "row"]
    if panels:
        titles = [p.get("title") for p in chosen]
        if missing := [t for t in panels if t not in titles]:
            raise SnapshotError(f"--panel {missing}: no such panel (panels: {titles})")
        chosen = [p for p in chosen if p.get("title") in panels]
    out_dir.mkdir(parents=True, exist_ok=True)
    shots = []
    for i, p in enumerate(chosen, 1):
        try:
            shot = panel_data(p, prom, start, end, values, scrape_s)
        except SnapshotError as exc:
            shot = PanelShot(p.get("title", "?"), "", p.get("type", "timeseries"), [], error=str(exc))
        png = out_dir / f"{i:02d}-{_slug(shot.title)}.png"
        draw(shot, png, start, end)
        shot.png = png.name
        shots.append(shot)
    index = {
        "dashboard": dashboard.get("title", ""),
        "prometheus": prom,
        "start": start,
        "end": end,
        "variables": values,
        "panels": [{**asdict(s), "points": s.points, "series": len(s.lines)} for s in shots],
    }
    (out_dir / "index.json").write_text(json.dumps(index, indent=1) + "\n")
    return shots


def to_series(shot: PanelShot, start: float) -> Series:
    """A panel's data as a result Series (x = seconds from `start`), so a day's report draws it from the result."""
    s = Series(shot.title, Column("time since start", "s"), Column(shot.title, shot.unit))
    for label, pts in shot.lines.items():
        for t, v in pts:
            s.point(label, round(t - start, 3), v)
    return s


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--dashboard", type=Path, required=True, help="Grafana dashboard JSON")
    ap.add_argument("--prometheus", required=True, help="http://127.0.0.1:PORT")
    ap.add_argument("--from", dest="start", default="now-15m")
    ap.add_argument("--to", dest="end", default="now")
    ap.add_argument("--var", action="append", default=[], help="name=value (repeatable)")
    ap.add_argument("--panel", action="append", default=[], help="only this panel title (repeatable)")
    ap.add_argument("-o", "--out", type=Path, required=True)
    a = ap.parse_args(argv)
    try:
        given = {}
        for item in a.var:
            name, sep, value = item.partition("=")
            if not sep or not name:
                raise SnapshotError(f"--var {item!r}: expected name=value")
            given[name] = value
        now = time.time()
        shots = snapshot(
            json.loads(a.dashboard.read_text()), a.prometheus.rstrip("/"), a.out,
            parse_time(a.start, now), parse_time(a.end, now), given, a.panel or None,
        )  # fmt: skip
    except (SnapshotError, OSError, json.JSONDecodeError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    for s in shots:
        state = f"error: {s.error}" if s.error else f"{len(s.lines)} series, {s.points} points"
        print(f"{a.out / s.png}  {s.title}  ({state})")
    return 1 if any(s.error for s in shots) else 0


if __name__ == "__main__":
    sys.exit(main())
