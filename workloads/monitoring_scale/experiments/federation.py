"""Two-level Prometheus federation: what the global level holds and how fresh (d55.e1), and what it costs against a
single Prometheus under the same load (d55.e2)."""

from __future__ import annotations

import statistics
import threading
import time

from pydantic import Field

from ailab.contract import Context, Output, Params, Table
from workloads.monitoring_scale import stores
from workloads.monitoring_scale.federation import (
    AGGREGATES,
    ALL_RAW,
    METRIC,
    RAW_QUERY,
    RECORD,
    federate_job,
    federated_equal,
    federation,
    head_series,
    lag_s,
    synthetic_fleet,
    usage_of,
)
from workloads.observability.prom import Prom


class FederationParams(Params):
    series: int = Field(default=20000, ge=64, description="raw series the child scrapes")
    settle_s: float = Field(default=30, ge=0, description="wait after the global's first federated sample, s")


class FederationCostParams(Params):
    series: int = Field(default=20000, ge=64, description="raw series the child scrapes")
    window_s: float = Field(default=60, gt=0, description="measured window per set-up, s")
    query_rps: float = Field(default=2, gt=0, description="dashboard queries per second during the window")
    range_s: float = Field(default=600, gt=0, description="range of each dashboard query_range, s")


def federation_deploy(ctx: Context, p: FederationParams) -> Output:
    """Child -> global federation of the recording rule's aggregates: series at each level, equality, lag (s)."""
    host = stores.host_note()
    t = Table.of("two-level federation", [("check", ""), ("value", ""), ("unit", "")])
    with synthetic_fleet(p.series) as (_, port), federation(ctx.platform, ctx.workdir / "fed", port, AGGREGATES) as f:
        assert f.glob is not None and f.config is not None
        f.glob.wait_for(f"count({RECORD})", 90, lambda v: v >= 64)
        time.sleep(p.settle_s)
        t.add("raw series in the child", int(f.child.value(f"count({METRIC})") or 0), "series")
        t.add("child head series (all)", head_series(f.child), "series")
        t.add("aggregated series in the child (recording rule)", int(f.child.value(f"count({RECORD})") or 0),
              "series")  # fmt: skip
        t.add("series the global holds from the child", int(f.glob.value(f"count({RECORD})") or 0), "series")
        t.add("raw series in the global", int(f.glob.value(f"count({METRIC})") or 0), "series")
        t.add("global head series (all)", head_series(f.glob), "series")
        n, eq = federated_equal(f.child, f.glob, RECORD, "shard")
        t.add("federated values equal to the child's at the same timestamp", f"{eq} of {n}", "series")
        t.add("global trails the child by (median of 10)", round(lag_s(f.child, f.glob, RECORD), 2), "s")
        t.add("/federate scrape duration", round(1000 * (f.glob.value('scrape_duration_seconds{job="federate"}')
                                                         or 0), 2), "ms")  # fmt: skip
        t.add("samples per /federate scrape", int(f.glob.value('scrape_samples_scraped{job="federate"}') or 0),
              "samples")  # fmt: skip
        job = federate_job(f.config)
    return Output(
        tables=[t],
        notes=[
            host,
            f"Child: scrapes {p.series} series every 5 s and records {RECORD} = {RAW_QUERY}. Global: scrapes the "
            f"child's /federate every 15 s with honor_labels. Its generated job: {job}",
            "The global level holds only what match[] selects: the aggregates, not the raw series, which is what "
            "keeps a global view affordable; its freshness is bounded by the two scrape intervals plus the rule "
            "evaluation interval.",
        ],
    )


def _query_load(prom: Prom, expr: str, rps: float, range_s: float, stop: threading.Event, out: list[float]) -> None:
    while not stop.is_set():
        end = time.time()
        t0 = time.perf_counter()
        prom.get("/api/v1/query_range", {"query": expr, "start": end - range_s, "end": end, "step": 15})
        out.append((time.perf_counter() - t0) * 1000)
        stop.wait(max(0.0, 1.0 / rps - (time.perf_counter() - t0)))


def federation_cost(ctx: Context, p: FederationCostParams) -> Output:
    """Single Prometheus vs child + global (aggregates / all raw series): CPU, RSS, scrape and query cost."""
    host = stores.host_note()
    t = Table.of(
        "single vs federated, same load",
        [("set-up", ""), ("queried", ""), ("query median", "ms"), ("query p95", "ms"), ("child CPU", "% of a core"),
         ("child RSS", "MiB"), ("global CPU", "% of a core"), ("global RSS", "MiB"), ("/federate scrape", "ms"),
         ("samples per /federate", "samples")],
        caption=f"{p.series} raw series scraped every 5 s by the child; the same dashboard panel (per-shard rate, "
        f"{p.range_s:.0f} s range, 15 s step) queried {p.query_rps:g}/s for {p.window_s:.0f} s at the level a user "
        "would ask; CPU averaged over the window. The global scrapes /federate every 15 s.",
    )  # fmt: skip
    setups = [
        ("single Prometheus", None, "child", RAW_QUERY),
        ("federated: aggregates only", AGGREGATES, "global", RECORD),
        ("federated: every raw series", ALL_RAW, "global", RAW_QUERY),
    ]
    with synthetic_fleet(p.series) as (_, port):
        for i, (name, match, where, expr) in enumerate(setups):
            with federation(ctx.platform, ctx.workdir / f"fed{i}", port, match) as f:
                target = f.glob if where == "global" else f.child
                assert target is not None
                target.wait_for(f"count({RECORD if expr == RECORD else METRIC})", 120, lambda v: v >= 64)
                time.sleep(10)
                stop, times = threading.Event(), []
                th = threading.Thread(target=_query_load, args=(target, expr, p.query_rps, p.range_s, stop, times))
                th.start()
                pids = {"child": f.platform.record("prometheus").pid}
                if f.glob is not None:
                    pids["global"] = f.platform.record("prometheus_global").pid
                use = usage_of(pids, p.window_s)
                stop.set()
                th.join()
                fed_ms = fed_samples = "-"
                if f.glob is not None:
                    fed_ms = round(1000 * (f.glob.value('avg_over_time(scrape_duration_seconds{job="federate"}[1m])')
                                           or 0), 1)  # fmt: skip
                    fed_samples = int(f.glob.value('scrape_samples_scraped{job="federate"}') or 0)
                g = use.get("global")
                c = use["child"]
                t.add(name, where, round(statistics.median(times), 1), round(stores.nearest_rank(times, 0.95), 1),
                      round(c.cpu_percent, 1), round(c.rss_mib, 1),
                      round(g.cpu_percent, 1) if g else "-", round(g.rss_mib, 1) if g else "-",
                      fed_ms, fed_samples)  # fmt: skip
    return Output(
        tables=[t],
        notes=[
            host,
            "Federating the aggregates costs the child one small /federate answer per global scrape; federating every "
            "raw series makes the child serialise all of them on every global scrape and stores each series a second "
            "time in the global: compare the rows' /federate time, CPU and RSS (this run's, on a shared 2-core host).",
        ],
    )
