"""VictoriaMetrics single-node (Debian's /usr/bin/victoria-metrics 1.79): the local long-term store.

Prometheus `remote_write`s to `/api/v1/write` (option `prometheus.remote_write: [victoriametrics]`); it answers
PromQL (MetricsQL, a superset) on `/api/v1/query` and `/api/v1/query_range`, and takes backfilled history on
`/api/v1/import/prometheus`. The embedded stand-in for Thanos: experiments that use it for Thanos record it as a
substitute. Options: `victoriametrics.retention` (a duration of at least 1d, VictoriaMetrics' own minimum, and at
least the Prometheus scrape interval; default "30d"), `victoriametrics.latency_offset` (how old a sample must be
before queries return it; VictoriaMetrics' default "30s"), `victoriametrics.args` (extra flags).

Before start the flags are checked by the binary itself (`-dryRun` parses every flag and an empty scrape config,
then exits).
"""

from __future__ import annotations

import shutil
import subprocess

from ailab.local import registry
from ailab.local.services import prometheus as local
from ailab.local.spec import HOST, PlatformContext, ServiceSpec

DEFAULT_PORT = 8428
MIN_RETENTION_S = 86400.0  # VictoriaMetrics exits with "-retentionPeriod cannot be smaller than a day"


def dry_run(binary: str, argv: list[str], scrape_cfg: str) -> None:
    """Let the binary parse the flags (unknown flag, bad value -> its error) without starting."""
    p = subprocess.run(
        [binary, *argv[1:], f"-promscrape.config={scrape_cfg}", "-dryRun"],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    if p.returncode != 0:
        lines = [ln for ln in (p.stdout + p.stderr).splitlines() if "fatal" in ln or "invalid" in ln or "flag" in ln]
        raise registry.PlatformError(
            f"service victoriametrics: `victoria-metrics -dryRun` refused the flags: {' | '.join(lines[-2:])}"
        )


def spec(ctx: PlatformContext) -> ServiceSpec:
    binary = shutil.which("victoria-metrics")
    if binary is None:
        raise registry.PlatformError(
            "service victoriametrics: binary 'victoria-metrics' not found (apt-get install victoria-metrics)"
        )
    o = ctx.options
    retention = str(o.get("victoriametrics.retention", "30d"))
    if local.duration_s("victoriametrics.retention", retention) < MIN_RETENTION_S:
        raise registry.PlatformError(
            f"option victoriametrics.retention {retention!r}: below VictoriaMetrics' minimum (allowed: 1d or more)"
        )
    local.check_retention(
        "victoriametrics.retention",
        retention,
        "prometheus.scrape_interval",
        o.get("prometheus.scrape_interval", "5s"),
    )
    offset = str(o.get("victoriametrics.latency_offset", "30s"))
    local.duration_s("victoriametrics.latency_offset", offset)
    port = ctx.port("victoriametrics.http", DEFAULT_PORT)
    conf = ctx.state_dir / "victoriametrics"
    conf.mkdir(parents=True, exist_ok=True)
    empty = conf / "scrape-none.yaml"  # only for -dryRun: this VictoriaMetrics does not scrape, Prometheus writes
    empty.write_text("scrape_configs: []\n")
    argv = [
        binary,
        f"-httpListenAddr={HOST}:{port}",
        f"-storageDataPath={ctx.data_dir('victoriametrics')}",
        f"-retentionPeriod={retention}",
        f"-search.latencyOffset={offset}",
        *o.get("victoriametrics.args", []),
    ]
    dry_run(binary, argv, str(empty))
    base = f"http://{HOST}:{port}"
    return ServiceSpec(
        name="victoriametrics",
        argv=argv,
        ports={"http": port},
        ready=f"{base}/health",
        log=ctx.log_path("victoriametrics"),
        ready_timeout_s=30.0,
        info={"write": f"{base}/api/v1/write", "query": f"{base}/api/v1/query", "retention": retention},
    )
