"""d76.e4: one dashboard with metrics, logs and traces together — Grafana JSON from the telemetry generator, every
panel rendered as a picture from live data by the lab's snapshot renderer, while requests flow through the gateway
into Triton with tracing on and the syslog-ng collector tailing both."""

from __future__ import annotations

import json
import os
import threading
import time
from typing import Annotated

from pydantic import Field

from ailab.contract import Context, Output, Params, Substitute, Table
from ailab.contract.ports import free_port
from workloads.telemetry import dashboard, repository, snapshot, traces
from workloads.telemetry.stack import infer, read_records, telemetry_platform

MISSING = "no_such_model"


class UnifiedParams(Params):
    window_s: Annotated[float, Field(ge=10, le=900)] = Field(default=90.0, description="traffic window pictured, s")
    rps: Annotated[float, Field(gt=0, le=500)] = Field(default=20.0, description="offered requests per second")
    missing_every: Annotated[int, Field(ge=2, le=1000)] = Field(
        default=10, description="every Nth request goes to a model that does not exist (404s in the access log)"
    )
    model: str = Field(default=repository.ENSEMBLE, description="the dashboard's $model while rendering")


def _traffic(base: str, p: UnifiedParams, stop: threading.Event, sent: list[tuple[str, str, int]]) -> None:
    """Open-loop arrivals at p.rps (one thread: a request that takes longer delays the next, which is counted)."""
    i, t0 = 0, time.monotonic()
    while not stop.is_set():
        due = t0 + i / p.rps
        if (wait := due - time.monotonic()) > 0:
            stop.wait(wait)
        model = (
            MISSING if i % p.missing_every == p.missing_every - 1 else (repository.SINGLE, repository.ENSEMBLE)[i % 2]
        )
        rid = f"u-{i:06d}"
        sent.append((rid, model, infer(base, model, rid)))
        i += 1


def unified_dashboard(ctx: Context, p: UnifiedParams) -> Output:
    from prometheus_client import start_http_server

    la = os.getloadavg()
    model_json = dashboard.build()
    trace_opt = {"rate": 1, "level": "TIMESTAMPS", "log_frequency": 1}
    services = ["syslogng", "triton", "haproxy", "prometheus"]
    sent: list[tuple[str, str, int]] = []
    with telemetry_platform(ctx.platform, ctx.workdir / "stack", trace=trace_opt, services=services) as s:
        assert s.trace_file is not None
        exp = dashboard.LogTraceExporter(s.records, s.trace_file)
        port = free_port()
        server, _thread = start_http_server(port, addr="127.0.0.1", registry=exp.registry)
        targets = ctx.workdir / "stack" / "prometheus" / "targets"
        targets.mkdir(parents=True, exist_ok=True)
        tmp = targets / f"loadgen-{port}.tmp"
        tmp.write_text(json.dumps([{"targets": [f"127.0.0.1:{port}"], "labels": {"exporter": "telemetry"}}]))
        tmp.replace(targets / f"loadgen-{port}.json")
        exp.start()
        stop = threading.Event()
        gen = threading.Thread(target=_traffic, args=(s.gateway, p, stop, sent), daemon=True)
        start = time.time()
        gen.start()
        time.sleep(p.window_s)
        stop.set()
        gen.join(timeout=60)
        time.sleep(3)  # the last scrapes of the last requests
        end = time.time()
        shots = snapshot.snapshot(model_json, s.prometheus, ctx.workdir / "snapshot", start, end, {"model": p.model})
        exp.stop()
        server.shutdown()
        records = read_records(s.records)
        found = traces.read(traces.trace_files(s.trace_file))
    by_title = {pn["title"]: dashboard.pillar(pn) for pn in model_json["panels"]}
    panels = Table.of(
        "panels",
        [("panel", ""), ("pillar", ""), ("series", ""), ("points", ""), ("unit", ""), ("picture", "")],
        caption=f"Every panel of the dashboard rendered from live data ($model = {p.model}); the pictures are the "
        "report's plots below (drawn from these series) and the PNGs under the run's workdir.",
    )
    for sh in shots:
        panels.add(sh.title, by_title.get(sh.title, "?"), len(sh.lines), sh.points, sh.unit, sh.png)
    # the logs panel Grafana would show beside the graphs: the latest gateway records, as the collector holds them
    logs = Table.of("latest_gateway_log_records", [("ts", ""), ("model", ""), ("status", "HTTP"), ("message", "")])
    for r in [r for r in records if r.get("service") == "haproxy" and "status" in r][-8:]:
        logs.add(r.get("ts", ""), r.get("model", ""), r.get("status", ""), str(r.get("message", ""))[:160])
    ok = sum(1 for _, _, st in sent if st == 200)
    traffic = Table.of(
        "traffic",
        [("requests", ""), ("ok", ""), ("http_404", ""), ("window", "s"), ("rate", "req/s"), ("log_records", ""),
         ("traces", "")],
    )  # fmt: skip
    roots = [t for t in found.values() if t.parent_id is None]
    traffic.add(len(sent), ok, sum(1 for _, _, st in sent if st == 404), round(end - start, 1),
                round(len(sent) / max(end - start, 1e-9), 1), len(records), len(roots))  # fmt: skip
    series = [snapshot.to_series(sh, start) for sh in shots]
    empty = [sh.title for sh in shots if not sh.lines]
    notes = [
        f"host: {os.cpu_count()} cores, load average {la[0]:.1f}/{la[1]:.1f}/{la[2]:.1f} (1/5/15 min) at start",
        "dashboard: Grafana JSON built with grafana-foundation-sdk by workloads/telemetry/dashboard.py; each panel's "
        "own PromQL run by workloads/telemetry/snapshot.py (`lab dashboards snapshot` uses the same renderer) "
        "against the live Prometheus with query_range, $model and $__rate_interval applied.",
        "logs and traces enter Prometheus as metrics counted from the syslog-ng records (lab_log_records_total) "
        "and from Triton's trace files (lab_trace_stage_seconds), polled every 0.5 s by the runner's exporter.",
        f"panels without data: {', '.join(empty) if empty else 'none'}.",
    ]
    return Output(
        tables=[panels, traffic, logs],
        series=series,
        notes=notes,
        artifacts={"snapshot directory (PNGs, index.json)": str(ctx.workdir / "snapshot")},
        substitute=Substitute(
            instead_of="Grafana with Loki (logs) and Tempo/Jaeger (traces) data sources",
            used="the lab's snapshot renderer (matplotlib) over Prometheus, logs and traces counted into Prometheus "
            "metrics from the syslog-ng records and Triton's trace files",
            why="no Grafana server, Loki, Tempo or Jaeger is installable here (Debian/PyPI/npm)",
        ),
    )
