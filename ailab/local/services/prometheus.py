"""Prometheus (Debian's /usr/bin/prometheus) scraping the local services with the generated config and rules.

The config is rendered at start from ailab/observability (the same rules as dashboards/prometheus/rules/),
with the local targets filled in, and checked with `promtool check config` before the process starts. Options
(PlatformContext.options): `prometheus.scrape` (service names to scrape; default: the week's services that export
metrics), `prometheus.scrape_interval` ("1s", "5s", "15s"; default "5s"), `prometheus.p99_threshold_s`
(TritonP99LatencyHigh's threshold), `prometheus.extra_rules` ({file name: rule file dict}), `prometheus.alert_for`
(replaces every alert's `for:`, e.g. "0s" in drills), `prometheus.retention` (TSDB retention, a Prometheus duration;
default "2d"; at least the scrape interval), `prometheus.remote_write` (loopback URLs to write every sample to; the
word "victoriametrics" stands for the platform's VictoriaMetrics), `prometheus.args` (extra command-line arguments).

The checks below are shared with prometheus_global.py and victoriametrics.py.
"""

from __future__ import annotations

import ipaddress
import re
import shutil
import subprocess
import urllib.parse
from pathlib import Path
from typing import Any

import yaml

from ailab.contract import durations
from ailab.local import registry
from ailab.local.spec import HOST, PlatformContext, ServiceSpec
from ailab.observability.generate import dump_yaml, render_local
from ailab.observability.rules import DEFAULT_P99_THRESHOLD_S
from ailab.observability.scrape import Targets

DEFAULT_PORT = 9090
DEFAULT_RETENTION = "2d"
# service -> (port name, default port) of what Prometheus scrapes on it
METRICS_PORTS = {
    "triton": ("triton.metrics", 8002),
    "exporter": ("exporter.metrics", 9108),
    "alertmanager": ("alertmanager.http", 9093),
    "haproxy": ("haproxy.metrics", 8405),  # HAProxy's own Prometheus exporter (the gateway weeks)
}
JOBS = {"triton": "triton", "exporter": "lab-exporter", "alertmanager": "alertmanager", "haproxy": "haproxy"}
VM_WRITE = "victoriametrics"  # alias in prometheus.remote_write for the platform's VictoriaMetrics


def duration_s(field: str, value: object) -> float:
    """Seconds of a Prometheus duration ("30s", "1h30m", "15d"); PlatformError naming `field` otherwise."""
    try:
        return durations.seconds(str(value))
    except ValueError:
        raise registry.PlatformError(
            f"option {field} {value!r}: not a duration (allowed: {durations.ALLOWED})"
        ) from None


def check_retention(field: str, retention: object, scrape_field: str, scrape_interval: object) -> None:
    """A retention shorter than the scrape interval keeps no sample between two scrapes: refuse it."""
    r, s = duration_s(field, retention), duration_s(scrape_field, scrape_interval)
    if r < s:
        raise registry.PlatformError(
            f"option {field} {retention!r}: below the scrape interval {scrape_interval} ({scrape_field}); "
            "allowed: a duration of at least one scrape interval"
        )


def check_loopback(field: str, url: str) -> str:
    """The URL when its host is a loopback address (the local platform never sends data off this host)."""
    parsed = urllib.parse.urlsplit(url)
    host = parsed.hostname or ""
    loop = host == "localhost"
    if not loop:
        try:
            loop = ipaddress.ip_address(host).is_loopback
        except ValueError:
            loop = False
    if parsed.scheme not in ("http", "https") or not loop:
        raise registry.PlatformError(
            f"option {field} {url!r}: not a loopback URL (allowed: http(s)://127.0.0.1:PORT/..., localhost or [::1])"
        )
    return url


def remote_write_urls(ctx: PlatformContext, field: str) -> list[str]:
    """The option's remote-write URLs, the VictoriaMetrics alias resolved, each checked to be loopback."""
    raw = ctx.options.get(field) or []
    if isinstance(raw, str):
        raw = [raw]
    urls = []
    for i, u in enumerate(raw):
        if u == VM_WRITE:
            u = ctx.url("victoriametrics.http", 8428, "/api/v1/write")
        urls.append(check_loopback(f"{field}[{i}]", str(u)))
    return urls


def promtool_check(service: str, config: Path) -> None:
    """`promtool check config` (which also checks the rule files it names); PlatformError with its complaint."""
    tool = shutil.which("promtool")
    if tool is None:
        raise registry.PlatformError(f"service {service}: 'promtool' not found (apt-get install prometheus)")
    p = subprocess.run([tool, "check", "config", str(config)], capture_output=True, text=True, timeout=60, check=False)
    if p.returncode != 0:
        lines = [ln for ln in (p.stdout + p.stderr).splitlines() if ln.strip()]
        raise registry.PlatformError(
            f"service {service}: promtool check config {config} failed: {' | '.join(lines[-3:])}"
        )


# label names a PromQL expression uses: grouping clauses and matcher names inside {...}
_CLAUSE = re.compile(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\(([^)]*)\)")
_BRACES = re.compile(r"\{([^{}]*)\}")
_MATCHER = re.compile(r"([a-zA-Z_][a-zA-Z0-9_]*)\s*(?:=~|!~|!=|=)")
_STRINGS = re.compile(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'')


def expr_labels(expr: str) -> set[str]:
    """Label names an expression groups, joins or matches on (not the metric names); `__name__` excluded."""
    body = _STRINGS.sub('""', expr)
    names: set[str] = set()
    for m in _CLAUSE.finditer(body):
        names |= {x.strip() for x in m.group(1).split(",") if x.strip()}
    for m in _BRACES.finditer(body):
        names |= set(_MATCHER.findall(m.group(1)))
    names.discard("__name__")
    return names


def unknown_rule_labels(field: str, rule_files: dict[str, dict[str, Any]], known: set[str]) -> None:
    """A recording rule naming a label no series carries computes nothing (or silently drops the grouping)."""
    for fname, content in rule_files.items():
        for g in content.get("groups", []):
            for r in g.get("rules", []):
                if "record" not in r:
                    continue
                bad = sorted(expr_labels(str(r.get("expr", ""))) - known)
                if bad:
                    raise registry.PlatformError(
                        f"option {field} {fname} group {g.get('name')!r} rule {r['record']!r}: unknown label(s) "
                        f"{bad} in its expr (allowed: the labels of the scraped series: {', '.join(sorted(known))})"
                    )


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


def add_remote_write(config: Path, urls: list[str]) -> None:
    """Add `remote_write` to a rendered config."""
    if not urls:
        return
    cfg = yaml.safe_load(config.read_text())
    cfg["remote_write"] = remote_write_section(urls)
    config.write_text(dump_yaml(cfg))


def remote_write_section(urls: list[str]) -> list[dict[str, Any]]:
    """`remote_write:` entries; short deadlines so that a stopped receiver cannot hang Prometheus' shutdown."""
    return [{"url": u, "queue_config": {"batch_send_deadline": "1s", "max_backoff": "1s"}} for u in urls]


def spec(ctx: PlatformContext) -> ServiceSpec:
    binary = shutil.which("prometheus")
    if binary is None:
        raise registry.PlatformError("service prometheus: binary 'prometheus' not found (apt-get install prometheus)")
    port = ctx.port("prometheus.http", DEFAULT_PORT)
    conf_dir = ctx.state_dir / "prometheus"
    interval = ctx.options.get("prometheus.scrape_interval", "5s")
    retention = ctx.options.get("prometheus.retention", DEFAULT_RETENTION)
    check_retention("prometheus.retention", retention, "prometheus.scrape_interval", interval)
    urls = remote_write_urls(ctx, "prometheus.remote_write")
    config = render_local(
        conf_dir,
        targets(ctx, port),
        scrape_interval=interval,
        p99_threshold_s=float(ctx.options.get("prometheus.p99_threshold_s", DEFAULT_P99_THRESHOLD_S)),
        extra_rule_files=ctx.options.get("prometheus.extra_rules"),
        alert_for=ctx.options.get("prometheus.alert_for"),
    )
    add_remote_write(config, urls)
    promtool_check("prometheus", config)
    argv = [
        binary,
        f"--config.file={config}",
        f"--storage.tsdb.path={ctx.data_dir('prometheus')}",
        f"--web.listen-address={HOST}:{port}",
        "--web.enable-lifecycle",  # POST /-/reload after a rule or config change (the d06 experiments do)
        "--enable-feature=exemplar-storage",  # keep the trace_id exemplars the load generator exports
        f"--storage.tsdb.retention.time={retention}",
        *ctx.options.get("prometheus.args", []),
    ]
    info = {"config": str(config), "targets_dir": str(conf_dir / "targets")}
    if urls:
        info["remote_write"] = ", ".join(urls)
    return ServiceSpec(
        name="prometheus",
        argv=argv,
        ports={"http": port},
        ready=f"http://{HOST}:{port}/-/ready",
        log=ctx.log_path("prometheus"),
        ready_timeout_s=30.0,
        info=info,
    )
