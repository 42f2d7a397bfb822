"""GPU monitoring and alerting on a real GPU (day 46), one runner per question:

- d46.e1 `exporter_metrics`: what the exporter exposes and what a scrape costs;
- d46.e2 `prometheus_scrape`: the same metrics through a Prometheus that scrapes it;
- d46.e3 `gpu_panels`: the GPU dashboard's panel queries, idle and under load;
- d46.e4 `temperature_alert`: the generated 85 °C rule (and a drill copy the load can reach) through Prometheus,
  Alertmanager and the webhook receiver;
- d46.e5 `inference_load`: GPU metrics idle -> under an inference load -> cool-down, beside the work done.

Each records what it stands in for: the lab's NVML exporter instead of DCGM (not installable), local processes
instead of the cluster's Prometheus, panel queries instead of Grafana (not installable).
"""

from __future__ import annotations

import json
import shutil
import statistics
import time
from datetime import datetime
from typing import Annotated

from pydantic import Field, StringConstraints

from ailab.contract import Column, Context, Output, Params, Series, Skip, Substitute, Table
from workloads.observability import gpuwatch, notifications, rulefiles
from workloads.observability.gpuwatch import NVML_EXPORTER, PHASE_METRICS, Load, Watch, longest_over
from workloads.observability.metering import static_target
from workloads.observability.quantiles import exact_quantile
from workloads.observability.stack import Stack, observed_platform

Interval = Annotated[str, StringConstraints(pattern=r"^[1-9][0-9]*s$")]
LOCAL_PROMETHEUS = Substitute(
    instead_of="the cluster's Prometheus scraping DCGM exporter pods",
    used="a local Prometheus process scraping the lab's NVML exporter on the GPU host",
    why="no Kubernetes cluster and no DCGM on the GPU machine (DCGM's repositories are unreachable)",
)


def _need(ctx: Context, *binaries: str) -> None:
    if ctx.device != "cuda":
        raise Skip("needs --device cuda")
    missing = [b for b in binaries if not any(shutil.which(name) for name in b.split("|"))]  # "a|b": either
    if missing:
        raise Skip(f"binaries not on this host: {', '.join(missing)} (apt-get install prometheus "
                   "prometheus-alertmanager; the GPU machine has none unless carried)")  # fmt: skip


def _scraped_by(s: Stack, url: str) -> None:
    """Point the stack's Prometheus at the in-process exporter (job lab-exporter) and wait for its first scrape."""
    static_target(s.targets_dir, "lab-exporter", url.removeprefix("http://").removesuffix("/metrics"))
    s.prom.wait_for('up{job="lab-exporter"}', 60, lambda v: v == 1)


class ExporterParams(Params):
    scrapes: int = Field(default=10, ge=1, description="scrapes timed")
    gpu: int = Field(default=0, ge=0, description="GPU index shown")


def exporter_metrics(ctx: Context, p: ExporterParams) -> Output:
    """d46.e1: the GPU metrics the exporter exposes, the DCGM field each stands for, and a scrape's cost (ms)."""
    _need(ctx)
    url = gpuwatch.start_exporter(gpuwatch.collector())
    times, sizes, last = [], [], {}
    for _ in range(p.scrapes):
        t0 = time.perf_counter()
        last, size = gpuwatch.scrape(url)
        times.append((time.perf_counter() - t0) * 1000)
        sizes.append(size)
        time.sleep(0.2)
    t = Table.of(
        f"GPU metrics the exporter exposes (GPU {p.gpu})",
        [("metric", ""), ("DCGM exporter field", ""), ("value", "")],
        caption="One scrape of the lab exporter's /metrics; the DCGM field is what the GPU dashboard reads first.",
    )
    for name in sorted(n for n in last if n.startswith("lab_gpu")):
        t.add(name, gpuwatch.DCGM_FIELD.get(name, "—"), last[name].get(str(p.gpu), next(iter(last[name].values()))))
    cost = Table.of("scrape cost", [("scrapes", ""), ("median", "ms"), ("max", "ms"), ("response", "bytes")])
    cost.add(p.scrapes, round(statistics.median(times), 2), round(max(times), 2), max(sizes))
    absent = sorted(set(gpuwatch.DCGM_FIELD) - set(last))
    return Output(
        tables=[t, cost],
        notes=[f"DCGM-equivalent metrics missing from the output: {absent}" if absent else
               "Every DCGM field the GPU dashboard reads has its lab_gpu_* equivalent in the output."],
        substitute=NVML_EXPORTER,
    )  # fmt: skip


class ScrapeParams(Params):
    scrape_interval: Interval = Field(default="1s", description="Prometheus scrape interval")
    window_s: float = Field(default=20, gt=0, description="how long Prometheus scrapes before it is read, s")
    gpu: int = Field(default=0, ge=0, description="GPU index read back")


def prometheus_scrape(ctx: Context, p: ScrapeParams) -> Output:
    """d46.e2: the GPU metrics read back through a Prometheus that scrapes the exporter; scrape health and cost."""
    _need(ctx, "prometheus")
    url = gpuwatch.start_exporter(gpuwatch.collector())
    t = Table.of(
        f"GPU metrics through Prometheus (GPU {p.gpu})",
        [("metric", ""), ("last value in Prometheus", ""), ("direct scrape", ""), ("samples in window", "samples")],
        caption=f"Prometheus scrapes the exporter every {p.scrape_interval}; read back after {p.window_s:.0f} s "
        "with instant queries, beside a direct scrape of /metrics at the same moment.",
    )
    with observed_platform(ctx.platform, ctx.workdir / "stack", p.scrape_interval, services=["prometheus"]) as s:
        _scraped_by(s, url)
        time.sleep(p.window_s)
        direct, _ = gpuwatch.scrape(url)
        for m in PHASE_METRICS:
            sel = f'{m}{{job="lab-exporter",gpu="{p.gpu}"}}'
            n = s.prom.value(f"count_over_time({sel}[{int(p.window_s)}s])")
            t.add(m, s.prom.value(sel), direct.get(m, {}).get(str(p.gpu)), int(n or 0))
        health = Table.of("scrape of the exporter", [("up", ""), ("scrape duration", "ms"), ("samples", "samples")])
        health.add(s.prom.value('up{job="lab-exporter"}'),
                   round(1000 * (s.prom.value('scrape_duration_seconds{job="lab-exporter"}') or float("nan")), 2),
                   s.prom.value('scrape_samples_scraped{job="lab-exporter"}'))  # fmt: skip
    return Output(tables=[t, health], substitute=LOCAL_PROMETHEUS)


class PanelParams(Params):
    idle_s: float = Field(default=10, ge=0, description="idle phase before the panels are read, s")
    load_s: float = Field(default=30, gt=0, description="matmul load before the panels are read again, s")
    size: int = Field(default=8192, ge=256, description="matrix size of the bf16 matmul load")
    scrape_interval: Interval = Field(default="1s", description="Prometheus scrape interval")
    gpu: int = Field(default=0, ge=0, description="GPU index loaded and read")


def _panel_values(s: Stack, gpu: int) -> dict[tuple[str, str], tuple[float | None, int]]:
    """(panel, query) -> (value for `gpu`, or the first series' value; series returned) for the GPU dashboard."""
    model = json.loads(rulefiles.GPU_DASHBOARD.read_text())
    out: dict[tuple[str, str], tuple[float | None, int]] = {}
    for panel in model.get("panels", []):
        for target in panel.get("targets", []):
            res = s.prom.query(gpuwatch.panel_expr(target.get("expr", "")))
            mine = [r for r in res if r["metric"].get("gpu") == str(gpu)] or res
            out[(panel.get("title", "?"), target.get("expr", ""))] = (
                float(mine[0]["value"][1]) if mine else None,
                len(res),
            )
    return out  # fmt: skip


def gpu_panels(ctx: Context, p: PanelParams) -> Output:
    """d46.e3: every GPU dashboard panel's query run against Prometheus, idle and under a matmul load."""
    _need(ctx, "prometheus")
    url = gpuwatch.start_exporter(gpuwatch.collector())
    step = gpuwatch.matmul_step(p.size, p.gpu)
    t = Table.of(
        f"GPU dashboard panels (GPU {p.gpu})",
        [("panel", ""), ("query", ""), ("idle", ""), ("under load", ""), ("series", "series")],
        caption=f"Each panel query of dashboards/grafana/gpu.json with $instance = all, run on Prometheus' query API "
        f"after {p.idle_s:.0f} s idle and after {p.load_s:.0f} s of {p.size}² bf16 matmuls; '—' = no data.",
    )
    with observed_platform(ctx.platform, ctx.workdir / "stack", p.scrape_interval, services=["prometheus"]) as s:
        _scraped_by(s, url)
        time.sleep(p.idle_s)
        idle = _panel_values(s, p.gpu)
        load = Load(step)
        load.start()
        try:
            time.sleep(p.load_s)
            busy = _panel_values(s, p.gpu)
        finally:
            load.stop()
    for (title, expr), (v_idle, _) in idle.items():
        v_busy, n = busy[(title, expr)]
        t.add(title, expr, v_idle, v_busy, n)
    empty = [title for (title, _), (v, _) in busy.items() if v is None]
    return Output(
        tables=[t],
        notes=[f"Panels without data under load: {empty} (DCGM-only fields such as XID errors have no NVML "
               "fallback)." if empty else "Every panel returned data under load."],
        substitute=Substitute(
            instead_of="Grafana panels over the DCGM exporter",
            used="the GPU dashboard's own panel queries run on a local Prometheus's query API, over the lab's NVML "
            "exporter",
            why="no Grafana server can be installed here or on the GPU machine, and no DCGM",
        ),
    )  # fmt: skip


class TemperatureAlertParams(Params):
    load_s: float = Field(default=120, gt=0, description="matmul load while the alerts are evaluated, s")
    size: int = Field(default=8192, ge=256, description="matrix size of the bf16 matmul load")
    drill_margin_c: float = Field(default=3.0, gt=0, description="drill copy's threshold above the idle temperature")
    gpu: int = Field(default=0, ge=0, description="GPU index loaded")


def temperature_alert(ctx: Context, p: TemperatureAlertParams) -> Output:
    """d46.e4: the generated GPUTemperatureHigh rule (85 °C) and a drill copy at idle + margin, under load, through
    Prometheus, Alertmanager and the webhook; when each fired and was delivered (s after the load started)."""
    _need(ctx, "prometheus", "prometheus-alertmanager|alertmanager")
    url = gpuwatch.start_exporter(gpuwatch.collector())
    rule = rulefiles.alert("GPUTemperatureHigh")
    threshold = max(rulefiles.thresholds(rule["expr"]))
    first, _ = gpuwatch.scrape(url)
    idle_c = first["lab_gpu_temperature_celsius"][str(p.gpu)]
    drill_c = round(idle_c + p.drill_margin_c, 1)
    drill = {"groups": [{"name": "lab-gpu-drill.alerts", "rules": [{
        "alert": "GPUTemperatureDrill", "expr": f"lab_gpu_temperature_celsius > {drill_c:g}", "for": "0s",
        "labels": {"severity": "critical"},
        "annotations": {"summary": "copy of GPUTemperatureHigh with a threshold the load reaches"}}]}]}  # fmt: skip
    step = gpuwatch.matmul_step(p.size, p.gpu)
    services = ["webhook", "alertmanager", "prometheus"]
    opts = {"prometheus.extra_rules": {"drill.yaml": drill}}
    with observed_platform(ctx.platform, ctx.workdir / "stack", "1s", services=services, extra_options=opts) as s:
        _scraped_by(s, url)
        watch = Watch(url, p.gpu)
        load = Load(step)
        t0 = time.time()
        load.start()
        try:
            watch.run("load", p.load_s)
            time.sleep(2)  # one more evaluation of the rules on the last readings, still under load
            fired = {a: _firing_since(s, a) for a in ("GPUTemperatureHigh", "GPUTemperatureDrill")}
        finally:
            load.stop()
        time.sleep(2)  # a notification of an alert that fired at the end of the window
        got = {a: notifications.alerts(s.notifications, a) for a in fired}
    temps = watch.points.get("lab_gpu_temperature_celsius", [])
    peak = watch.max("lab_gpu_temperature_celsius")
    t = Table.of(
        f"temperature alerts on GPU {p.gpu} under load",
        [("alert", ""), ("condition", ""), ("for", "s"), ("peak temperature", "°C"),
         ("longest run over threshold", "s"), ("firing in Prometheus", "s after load start"),
         ("notification at webhook", "s after load start")],
        caption=f"{p.load_s:.0f} s of {p.size}² bf16 matmuls; Prometheus evaluates the generated rule file every 1 s; "
        f"the drill copy's threshold is the idle temperature ({idle_c:g} °C) + {p.drill_margin_c:g} °C.",
    )  # fmt: skip
    for name, thr, hold in (("GPUTemperatureHigh", threshold, rulefiles.duration_s(rule["for"])),
                            ("GPUTemperatureDrill", drill_c, 0.0)):  # fmt: skip
        note = got[name]
        t.add(name, f"> {thr:g} °C", hold, peak, round(longest_over(temps, thr), 1),
              round(fired[name] - t0, 1) if fired[name] else "never",
              round(min(n["received_unix"] for n in note) - t0, 1) if note else "none")  # fmt: skip
    notes = [
        f"GPUTemperatureHigh ({rule['expr']}, for {rule['for']}) "
        + (f"fired: the GPU reached {peak:g} °C." if fired["GPUTemperatureHigh"] else
           f"never fired: the GPU peaked at {peak:g} °C, below {threshold:g} °C, in {p.load_s:.0f} s of load.")
    ]  # fmt: skip
    return Output(tables=[t], notes=notes, substitute=LOCAL_PROMETHEUS)


def _firing_since(s: Stack, alert: str) -> float | None:
    """Unix time at which `alert` started firing (it became active + its `for`), or None when it is not firing."""
    for a in s.prom.get("/api/v1/alerts")["alerts"]:
        if a["labels"].get("alertname") == alert and a["state"] == "firing":
            active = datetime.fromisoformat(a["activeAt"].replace("Z", "+00:00")).timestamp()
            return active + rulefiles.duration_s(_rule_for(s, alert))
    return None


def _rule_for(s: Stack, alert: str) -> str:
    """The `for:` of `alert` as the running Prometheus loaded it."""
    for g in s.prom.get("/api/v1/rules", {"type": "alert"})["groups"]:
        for r in g["rules"]:
            if r["name"] == alert:
                return f"{int(r.get('duration', 0))}s"
    raise KeyError(f"Prometheus has no alert rule {alert!r}")


class InferenceLoadParams(Params):
    idle_s: float = Field(default=10, ge=0, description="idle phase (model loaded), s")
    load_s: float = Field(default=120, gt=0, description="inference load phase, s")
    cool_s: float = Field(default=20, ge=0, description="cool-down phase, s")
    batch: int = Field(default=256, ge=1, description="requests per forward pass")
    hidden: int = Field(default=4096, ge=64, description="MLP width")
    layers: int = Field(default=4, ge=1, description="MLP blocks (Linear 4x, GELU, Linear)")
    gpu: int = Field(default=0, ge=0, description="GPU index loaded and read")
    scrape_interval_s: float = Field(default=1.0, gt=0, description="exporter scrape interval, s")


def inference_load(ctx: Context, p: InferenceLoadParams) -> Output:
    """d46.e5: GPU utilisation, memory, power, temperature and clock idle -> under inference load -> cool-down,
    with the requests served in the load phase."""
    _need(ctx)
    url = gpuwatch.start_exporter(gpuwatch.collector())
    step = gpuwatch.mlp_inference_step(p.batch, p.hidden, p.layers, p.gpu)
    watch = Watch(url, p.gpu, p.scrape_interval_s)
    load = Load(step)
    watch.run("idle (model loaded)", p.idle_s)
    load.start()
    try:
        watch.run("inference load", p.load_s)
    finally:
        load.stop()
    watch.run("cool-down", p.cool_s)
    t = Table.of(
        f"GPU {p.gpu} through the lab exporter",
        [("phase", ""), ("utilisation mean", "%"), ("utilisation max", "%"), ("memory used max", "GiB"),
         ("power max", "W"), ("temperature max", "°C"), ("SM clock median", "MHz")],
        caption=f"Exporter scraped every {p.scrape_interval_s:g} s over HTTP.",
    )  # fmt: skip
    for phase, m in watch.phases.items():
        u = m["lab_gpu_utilization_ratio"]
        t.add(phase, round(100 * statistics.fmean(u), 1), round(100 * max(u), 1),
              round(max(m["lab_gpu_memory_used_bytes"]) / 2**30, 2), round(max(m["lab_gpu_power_watts"]), 1),
              max(m["lab_gpu_temperature_celsius"]),
              round(statistics.median(m["lab_gpu_sm_clock_hertz"]) / 1e6))  # fmt: skip
    w = Table.of(
        "inference work in the load phase",
        [("requests served", "requests"), ("throughput", "req/s"), ("forward pass p50", "ms"),
         ("forward pass p99", "ms")],
        caption=f"Closed loop: forward passes of a {p.layers}-block bf16 MLP (width {p.hidden}) at batch {p.batch}, "
        "back to back, one request = one row.",
    )  # fmt: skip
    ms = [x * 1000 for x in load.step_s]
    p50, p99 = exact_quantile(ms, 0.5), exact_quantile(ms, 0.99)
    w.add(load.done, round(load.done / p.load_s, 1), round(p50, 3), round(p99, 3))
    series = Series("utilisation and temperature", x=Column("time", "s"), y=Column("value", "% / °C"))
    for x, v in watch.points.get("lab_gpu_utilization_ratio", []):
        series.point("utilisation %", round(x, 1), round(100 * v, 1))
    for x, v in watch.points.get("lab_gpu_temperature_celsius", []):
        series.point("temperature °C", round(x, 1), v)
    return Output(
        tables=[t, w],
        series=[series],
        substitute=Substitute(
            instead_of="a load test against an inference server, observed through the DCGM exporter",
            used="closed-loop batched forward passes of a bf16 MLP in this process, observed through the lab's NVML "
            "exporter",
            why="no inference server with a GPU backend (Triton's GPU backends, TensorRT) and no DCGM can be installed "
            "on the GPU machine",
        ),
    )
