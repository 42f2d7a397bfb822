"""Query latency over long windows (1 h ... 30 d of history): Prometheus' own TSDB vs VictoriaMetrics, the local
long-term store standing in for Thanos (d55.e3, d56.e4, d68.e4).

The same synthetic fleet history is backfilled into both: TSDB blocks made by `promtool tsdb create-blocks-from
openmetrics` (then compacted by Prometheus itself) and an HTTP import into VictoriaMetrics. Each window is queried
the way a dashboard panel does (a fixed number of points, step = window / points, rate window from the step) on
both stores, with VictoriaMetrics' result cache off, and both stores' answers are compared. With `live`, the
Prometheus also scrapes a live exporter and `remote_write`s everything to VictoriaMetrics (the Thanos-receive /
sidecar path), and the write path is checked: samples sent and failed, series in both, how far behind the store is.
"""

from __future__ import annotations

import shutil
import statistics
import time

from pydantic import Field

from ailab.contract import Column, Context, Output, Params, Series, Substitute, Table, durations
from ailab.contract.ports import free_port
from workloads.monitoring_scale import stores
from workloads.monitoring_scale.experiments import Window
from workloads.monitoring_scale.synth import HIST, REQ, FlatExporter, Fleet
from workloads.observability.prom import Prom

THANOS = Substitute(
    instead_of="Thanos (sidecar/receive + store gateway + querier)",
    used="VictoriaMetrics 1.79 single-node, fed by Prometheus remote_write and an HTTP import of the same history",
    why="Thanos is not installable here (no Debian, PyPI or npm package); the cluster stacks keep Thanos",
)


class LongWindowParams(Params):
    windows: list[Window] = Field(default=["1h", "6h", "1d", "7d", "30d"], min_length=1, description="e.g. 6h, 7d")
    history_days: int = Field(default=30, ge=1, le=60, description="history backfilled into both stores, days")
    instances: int = Field(default=10, ge=1, description="servers in the synthetic fleet")
    routes: int = Field(default=5, ge=1, description="request counters per server")
    history_step_s: int = Field(default=300, ge=15, description="resolution of the backfilled history, s")
    points: int = Field(default=250, ge=10, description="points per query (a panel's width), step = window/points")
    repeats: int = Field(default=5, ge=1, description="timed repeats of each query on each store")
    live: bool = Field(default=False, description="also scrape a live exporter and remote_write it to the store")
    live_series: int = Field(default=2000, ge=1, description="series of the live exporter when live")


def queries(step: float, hist_step: float) -> dict[str, str]:
    """The panel queries: total QPS by route and fleet P99, rate window as Grafana's $__rate_interval."""
    r = int(max(step + hist_step, 4 * hist_step))
    return {
        "QPS by route": f"sum by (route) (rate({REQ}[{r}s]))",
        "fleet P99": f"histogram_quantile(0.99, sum by (le) (rate({HIST}_bucket[{r}s])))",
    }


def long_windows(ctx: Context, p: LongWindowParams) -> Output:
    """Median/p95 query time (ms) per window on Prometheus and on the long-term store, and how far answers agree."""
    host = stores.host_note()
    fleet = Fleet(instances=p.instances, routes=p.routes)
    end = (time.time() // 3600 - 1) * 3600  # whole hours, an hour back: the history never overlaps the live head
    start = end - p.history_days * stores.DAY
    state = ctx.workdir / "state"
    for d in ("prometheus", "victoriametrics"):
        shutil.rmtree(state / "data" / d, ignore_errors=True)
    setup = Table.of("set-up", [("step", ""), ("time", "s"), ("detail", "")])
    t0 = time.monotonic()
    samples = stores.backfill_prometheus(
        fleet.series(), state / "data" / "prometheus", start, end, p.history_step_s, ctx.workdir / "om"
    )
    setup.add("promtool create-blocks-from openmetrics", round(time.monotonic() - t0, 1),
              f"{samples} samples, {fleet.count()} series, {p.history_days} d at {p.history_step_s} s")  # fmt: skip
    opts = {
        "prometheus.scrape": [],
        "prometheus.scrape_interval": "5s",
        "prometheus.retention": f"{p.history_days + 30}d",
        "victoriametrics.retention": f"{p.history_days + 30}d",
    }
    if p.live:
        opts["prometheus.remote_write"] = ["victoriametrics"]
        opts["victoriametrics.latency_offset"] = "1s"
    t = Table.of(
        "query latency by window",
        [("window", ""), ("query", ""), ("store", ""), ("median", "ms"), ("p95", "ms"), ("series", "series"),
         ("points", "points"), ("samples read", "samples"), ("answers vs Prometheus", "median rel. diff")],
        caption=f"{p.repeats} repeats per cell, {p.points} points per query (step = window / points); Prometheus' "
        "'samples read' from its stats=all (VictoriaMetrics does not report it); VictoriaMetrics queried with "
        "nocache=1 (its rollup result cache off).",
    )  # fmt: skip
    plot = Series("median query time by window", x=Column("window", "h"), y=Column("median", "ms"), log_x=True,
                  log_y=True)  # fmt: skip
    live = Table.of("remote_write path", [("check", ""), ("value", ""), ("unit", "")])
    services = ["prometheus", "victoriametrics"]  # stopped in this order: Prometheus first, then its write target
    with ctx.platform(services=services, state_dir=state, options=opts) as plat:
        prom_url, vm_url = plat.url("prometheus"), plat.url("victoriametrics")
        prom = Prom(prom_url)
        t1 = time.monotonic()
        stores.import_victoriametrics(vm_url, fleet.series(), start, end, p.history_step_s)
        setup.add("VictoriaMetrics /api/v1/import/prometheus + flush", round(time.monotonic() - t1, 1),
                  f"{samples} samples")  # fmt: skip
        t2 = time.monotonic()
        before, after = stores.wait_compacted(prom)
        setup.add("Prometheus compaction of the backfilled blocks", round(time.monotonic() - t2, 1),
                  f"{before} blocks loaded at start -> {after}")  # fmt: skip
        exporter = None
        if p.live:
            exporter = FlatExporter(p.live_series, metric="lab_live_series")
            port = free_port()
            exporter.serve(port)
            stores.announce(state / "prometheus" / "targets", port, {"generator": "live"})
            prom.wait_for("count(lab_live_series)", 60, lambda v: v >= p.live_series)
        try:
            for w in p.windows:
                span = durations.seconds(w)
                step = max(span / p.points, 15.0)
                for qname, expr in queries(step, p.history_step_s).items():
                    ref = None
                    for store, url in (("Prometheus", prom_url), ("VictoriaMetrics", vm_url)):
                        runs = [stores.query_range(url, expr, end - span, end, step) for _ in range(p.repeats)]
                        ms = sorted(r.ms for r in runs)
                        read = ""
                        if store == "Prometheus":
                            ref = runs[-1].values
                            d = prom.get("/api/v1/query_range", {"query": expr, "start": end - span, "end": end,
                                                                 "step": step, "stats": "all"})  # fmt: skip
                            read = int(d.get("stats", {}).get("samples", {}).get("totalQueryableSamples", 0))
                        gap = stores.relative_gap(ref or {}, runs[-1].values) if store != "Prometheus" else 0.0
                        med = statistics.median(ms)
                        t.add(w, qname, store, round(med, 2), round(stores.nearest_rank(ms, 0.95), 2),
                              runs[-1].series, runs[-1].points, read, round(gap, 4))  # fmt: skip
                        plot.point(f"{store}: {qname}", span / 3600, med)
            if p.live:
                _live_checks(live, prom, Prom(vm_url))
        finally:
            if exporter is not None:
                exporter.close()
    tables = [t, setup] + ([live] if p.live else [])
    return Output(
        tables=tables,
        series=[plot],
        notes=[
            host,
            "Both stores hold the same samples. Prometheus reads raw chunks of every block the window touches; "
            "VictoriaMetrics reads its merged parts. The long-term store's value is retention and one query "
            "endpoint over many Prometheus servers; on one node its latency is the number to compare, not the "
            "reason to deploy it.",
            "Answers differ by design where the rate functions differ: MetricsQL's rate() does not extrapolate to the "
            "window edges as PromQL's does, so 'answers vs Prometheus' is small but not zero for rate-based panels.",
        ],
        substitute=THANOS,
    )


def _live_checks(t: Table, prom: Prom, vm: Prom) -> None:
    """The write path: every series arrived, nothing failed, and how far the store's newest sample lags."""
    time.sleep(10)  # a few scrapes and remote-write batches
    sent = prom.value("sum(prometheus_remote_storage_samples_total)") or 0
    failed = prom.value("sum(prometheus_remote_storage_samples_failed_total)") or 0
    t.add("samples sent by remote_write", int(sent), "samples")
    t.add("samples failed", int(failed), "samples")
    t.add("live series in Prometheus", int(prom.value("count(lab_live_series)") or 0), "series")
    t.add("live series in VictoriaMetrics", int(vm.value("count(lab_live_series)") or 0), "series")
    lags = []
    for _ in range(10):
        a = prom.value('timestamp(lab_live_series{pod="pod-0000000"})')
        b = vm.value('timestamp(lab_live_series{pod="pod-0000000"})')
        if a is not None and b is not None:
            lags.append(a - b)
        time.sleep(1)
    t.add("newest sample: Prometheus minus VictoriaMetrics (median of 10)",
          round(statistics.median(lags), 2) if lags else "no sample", "s")  # fmt: skip
    t.add("VictoriaMetrics -search.latencyOffset", 1, "s")
