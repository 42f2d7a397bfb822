"""A high-cardinality gauge: Prometheus head series and memory as label values grow, and after rollback (d06.e4)."""

from __future__ import annotations

import time

from prometheus_client import CollectorRegistry, Gauge, start_http_server
from pydantic import Field

from ailab.contract import Column, Context, Output, Params, Series, Table
from ailab.contract.ports import free_port
from workloads.exporters.traffic import register_target
from workloads.observability.metering import measure_usage
from workloads.observability.stack import observed_platform


class CardinalityParams(Params):
    steps: list[int] = Field(default=[2500, 5000, 10000, 20000], min_length=1, description="label values per step")
    settle_s: float = Field(default=10, ge=0, description="wait after each step before reading memory, s")


def cardinality(ctx: Context, p: CardinalityParams) -> Output:
    """A gauge with N label values: Prometheus head series and RSS (MiB) as it grows, then after rollback."""
    t = Table.of(
        "high-cardinality gauge",
        [("phase", ""), ("label values", "values"), ("head series", "series"), ("prometheus RSS", "MiB")],
        caption="One gauge lab_cardinality_demo{id=...} exported by this process and scraped every 1 s.",
    )
    series = Series("Prometheus memory vs series", x=Column("head series", "series"), y=Column("RSS", "MiB"))
    with observed_platform(ctx.platform, ctx.workdir / "stack", services=["prometheus"]) as s:
        pid = s.platform.record("prometheus").pid
        reg = CollectorRegistry(auto_describe=False)
        g = Gauge("lab_cardinality_demo", "Demo gauge with one series per id", ["id"], registry=reg)
        port = free_port()
        httpd, _ = start_http_server(port, addr="127.0.0.1", registry=reg)
        target = register_target(s.targets_dir, port, {"generator": "cardinality"})
        try:
            s.prom.wait_for('up{generator="cardinality"}', 30, lambda v: v == 1)
            base = s.prom.wait_for("prometheus_tsdb_head_series", 30, lambda v: v > 0)
            rss = measure_usage(pid, 0.2).rss_mib
            t.add("baseline", 0, int(base), round(rss, 1))
            series.point("growth", base, rss)
            for n in p.steps:
                for i in range(n):
                    g.labels(str(i)).set(i)
                s.prom.wait_for("prometheus_tsdb_head_series", 60, lambda v, n=n: v >= base + n)
                time.sleep(p.settle_s)
                rss = measure_usage(pid, 0.2).rss_mib
                head = s.prom.value("prometheus_tsdb_head_series") or 0
                t.add("grown", n, int(head), round(rss, 1))
                series.point("growth", head, rss)
            g.clear()
            target.unlink()
            time.sleep(p.settle_s)
            head = s.prom.value("prometheus_tsdb_head_series") or 0
            t.add("rolled back (series gone from the target)", 0, int(head), round(measure_usage(pid, 0.2).rss_mib, 1))
        finally:
            target.unlink(missing_ok=True)
            httpd.shutdown()
    return Output(
        tables=[t],
        series=[series],
        notes=[
            "Rolling back stops new samples, but the series stay in the head block (and in memory) until the next "
            "head compaction (every 2 h by default): high cardinality costs memory long after the bad label is gone. "
            "Govern it at the source (bounded label values) or drop it at scrape time with metric_relabel_configs.",
        ],
    )
