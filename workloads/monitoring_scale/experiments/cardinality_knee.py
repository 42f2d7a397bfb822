"""High-cardinality labels: one metric whose `pod` label takes ever more values. Ingestion rate, head memory,
scrape time and query latency as the series count grows, and the knee where this host stops keeping up (d68.e5)."""

from __future__ import annotations

import statistics
import time

from pydantic import Field

from ailab.contract import Column, Context, Output, Params, Series, Table
from workloads.monitoring_scale import stores, sweep

AGG = f"sum by (shard) (rate({sweep.METRIC}[1m]))"
ONE = f'rate({sweep.METRIC}{{pod="pod-0000000"}}[1m])'


class CardinalityKneeParams(Params):
    steps: list[int] = Field(
        default=[1000, 10_000, 50_000, 100_000, 200_000, 400_000, 800_000], min_length=2, description="series"
    )
    scrape_interval: str = Field(default="5s", pattern=r"^[1-9][0-9]*s$", description="scrape interval")
    window_s: float = Field(default=30, gt=0, description="measured window per step, s")
    repeats: int = Field(default=5, ge=1, description="timed repeats of each query per step")
    min_ingest_ratio: float = Field(default=0.95, gt=0, le=1, description="knee: appended / expected below this")
    max_scrape_share: float = Field(default=0.5, gt=0, le=1, description="knee: scrape time / interval above this")


def knee(rows: list[dict], min_ratio: float, max_share: float) -> tuple[int | None, str]:
    """The first step that breaches (ingestion behind, or scrapes taking too much of the interval) and why."""
    for r in rows:
        if r["ratio"] < min_ratio:
            return r["n"], f"ingestion {r['ratio']:.2f} of the expected rate (< {min_ratio})"
        if r["share"] > max_share:
            return r["n"], f"scrape takes {r['share']:.2f} of the interval (> {max_share})"
        if not r["up"]:
            return r["n"], "scrape failed (target down)"
    return None, ""


def cardinality_knee(ctx: Context, p: CardinalityKneeParams) -> Output:
    """Per series count: samples appended/s vs expected, head series, RSS/heap, scrape time, query latency (ms)."""
    host = stores.host_note()
    interval = float(p.scrape_interval.rstrip("s"))
    t = Table.of(
        "cardinality sweep",
        [("series", "series"), ("head series", "series"), ("appended", "samples/s"), ("expected", "samples/s"),
         ("ingestion ratio", "ratio"), ("scrape duration", "s"), ("exporter render", "s"), ("RSS", "MiB"),
         ("Go heap in use", "MiB"), ("heap per series", "bytes"), ("aggregate query", "ms"),
         ("one-series query", "ms")],
        caption=f"One metric, label `pod` with N values (and `shard`, 64 values), scraped every {p.scrape_interval}; "
        f"each step read after two scrapes at that size, over {p.window_s:.0f} s. Aggregate query: {AGG} (touches "
        f"every series); one-series query: {ONE}; instant queries, median of {p.repeats}.",
    )  # fmt: skip
    mem = Series("head memory by series", x=Column("series", "series"), y=Column("memory", "MiB"), log_x=True)
    lat = Series("query latency by series", x=Column("series", "series"), y=Column("median", "ms"), log_x=True,
                 log_y=True)  # fmt: skip
    rows: list[dict] = []
    with sweep.rig(ctx.platform, ctx.workdir / "card", p.steps[0], p.scrape_interval) as r:
        pid = r.platform.record("prometheus").pid
        for n in p.steps:
            r.exporter.resize(n)
            up = sweep.wait_scrapes(r, n, 2, timeout_s=max(120.0, 20 * interval))
            r.exporter.render_s.clear()
            time.sleep(p.window_s)
            w = int(p.window_s)
            appended = (r.prom.value(f"increase(prometheus_tsdb_head_samples_appended_total[{w}s])") or 0) / w
            scrape = r.prom.value(f'avg_over_time(scrape_duration_seconds{{job="synthetic"}}[{w}s])') or 0
            self_series = r.prom.value('scrape_samples_scraped{job="prometheus"}') or 0
            expected = n / interval + self_series / interval
            head = int(r.prom.get("/api/v1/status/tsdb")["headStats"]["numSeries"])
            heap = (r.prom.value('go_memstats_heap_inuse_bytes{job="prometheus"}') or 0) / 2**20
            rss = sweep.rss_mib(pid)
            agg = [stores.timed_query(r.prom.url, AGG) for _ in range(p.repeats)]
            one = [stores.timed_query(r.prom.url, ONE) for _ in range(p.repeats)]
            render = statistics.median(r.exporter.render_s) if r.exporter.render_s else float("nan")
            row = {"n": n, "ratio": appended / expected, "share": scrape / interval, "up": up}
            rows.append(row)
            t.add(n, head, round(appended, 1), round(expected, 1), round(row["ratio"], 3), round(scrape, 3),
                  round(render, 3), round(rss, 1), round(heap, 1), round(heap * 2**20 / max(head, 1)),
                  round(statistics.median(agg), 2), round(statistics.median(one), 2))  # fmt: skip
            mem.point("RSS", n, rss)
            mem.point("Go heap in use", n, heap)
            lat.point("aggregate (all series)", n, statistics.median(agg))
            lat.point("one series", n, statistics.median(one))
            if knee(rows, p.min_ingest_ratio, p.max_scrape_share)[0] is not None:
                break
    at, why = knee(rows, p.min_ingest_ratio, p.max_scrape_share)
    found = (
        f"Knee at {at} series: {why}; the last step that kept up is the largest this host sustains at "
        f"{p.scrape_interval}." if at is not None else
        f"No knee up to {rows[-1]['n']} series: every step kept up (ingestion >= {p.min_ingest_ratio} of expected, "
        f"scrapes <= {p.max_scrape_share} of the interval)."
    )  # fmt: skip
    return Output(
        tables=[t],
        series=[mem, lat],
        notes=[
            host,
            found,
            "The exporter that renders the series runs on the same 2 cores ('exporter render' column): on this host "
            "the knee is where scraping, rendering and ingesting together stop fitting in one interval. The aggregate "
            "query's latency grows with the series it reads; the one-series query does not, which is why a "
            "high-cardinality label hurts dashboards (aggregations) first.",
        ],
    )
