"""Prometheus (Debian's /usr/bin/prometheus) scraping the local services with the generated config and rules.

The config is rendered at start from ailab/observability (the same rules as dashboards/prometheus/rules/),
with the local targets filled in. Options (PlatformContext.options): `prometheus.scrape` (service names to
scrape; default: the week's services that export metrics), `prometheus.scrape_interval` ("1s", "5s", "15s";
default "5s"), `prometheus.p99_threshold_s` (TritonP99LatencyHigh's threshold), `prometheus.extra_rules`
({file name: rule file dict}), `prometheus.alert_for` (replaces every alert's `for:`, e.g. "0s" in
drills), `prometheus.args` (extra command-line arguments).
"""

from __future__ import annotations

import shutil

from ailab.local import registry
from ailab.local.spec import HOST, PlatformContext, ServiceSpec
from ailab.observability.generate import render_local
from ailab.observability.rules import DEFAULT_P99_THRESHOLD_S
from ailab.observability.scrape import Targets

DEFAULT_PORT = 9090
# service -> (port name, default port) of what Prometheus scrapes on it
METRICS_PORTS = {
    "triton": ("triton.metrics", 8002),
    "exporter": ("exporter.metrics", 9108),
    "alertmanager": ("alertmanager.http", 9093),
}
JOBS = {"triton": "triton", "exporter": "lab-exporter", "alertmanager": "alertmanager"}


def targets(ctx: PlatformContext, port: int) -> Targets:
    """Local scrape targets: Prometheus itself, the chosen services, load generators through file_sd."""
    names = ctx.options.get("prometheus.scrape")
    if names is None:
        names = [n for n in registry.week_services(ctx.week) if n in METRICS_PORTS]
    unknown = [n for n in names if n not in METRICS_PORTS]
    if unknown:
        raise registry.PlatformError(
            f"option prometheus.scrape {unknown}: not scrapeable (allowed: {', '.join(METRICS_PORTS)})"
        )
    jobs = {"prometheus": [f"{HOST}:{port}"]}
    for n in names:
        jobs[JOBS[n]] = [f"{HOST}:{ctx.port(*METRICS_PORTS[n])}"]
    am = [f"{HOST}:{ctx.port('alertmanager.http', 9093)}"] if "alertmanager" in names else []
    return Targets(jobs=jobs, file_sd={"loadgen": "targets/loadgen-*.json"}, alertmanagers=am)


def spec(ctx: PlatformContext) -> ServiceSpec:
    binary = shutil.which("prometheus")
    if binary is None:
        raise registry.PlatformError("service prometheus: binary 'prometheus' not found (apt-get install prometheus)")
    port = ctx.port("prometheus.http", DEFAULT_PORT)
    conf_dir = ctx.state_dir / "prometheus"
    config = render_local(
        conf_dir,
        targets(ctx, port),
        scrape_interval=ctx.options.get("prometheus.scrape_interval", "5s"),
        p99_threshold_s=float(ctx.options.get("prometheus.p99_threshold_s", DEFAULT_P99_THRESHOLD_S)),
        extra_rule_files=ctx.options.get("prometheus.extra_rules"),
        alert_for=ctx.options.get("prometheus.alert_for"),
    )
    argv = [
        binary,
        f"--config.file={config}",
        f"--storage.tsdb.path={ctx.data_dir('prometheus')}",
        f"--web.listen-address={HOST}:{port}",
        "--web.enable-lifecycle",  # POST /-/reload after a rule or config change (the d06 experiments do)
        "--enable-feature=exemplar-storage",  # keep the trace_id exemplars the load generator exports
        "--storage.tsdb.retention.time=2d",
        *ctx.options.get("prometheus.args", []),
    ]
    return ServiceSpec(
        name="prometheus",
        argv=argv,
        ports={"http": port},
        ready=f"http://{HOST}:{port}/-/ready",
        log=ctx.log_path("prometheus"),
        ready_timeout_s=30.0,
        info={"config": str(config), "targets_dir": str(conf_dir / "targets")},
    )
