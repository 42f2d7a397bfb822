"""Day 6 (Prometheus + Grafana) on the local platform: scrape interval cost, bucket design, recording rules,
high cardinality and the alert chain to a webhook. Every number is measured on this host's real processes."""

from __future__ import annotations

import time
from pathlib import Path

from prometheus_client import CollectorRegistry, Gauge, start_http_server

from ailab.contract import Column, Context, Output, Series, Table
from ailab.local.spec import free_port
from ailab.observability import webhook
from ailab.observability.experiments.common import (
    cv_percent,
    exact_quantile,
    measure_usage,
    metered_traffic,
    pid_of,
    prometheus_for,
    query_range,
)
from ailab.observability.stack import observed_platform
from workloads.exporters.traffic import BUCKETS, register_target


def _qps(interval: str) -> str:
    """The QPS panel query with Grafana's $__rate_interval for this scrape interval (4 x scrape interval)."""
    return f"sum(rate(nv_inference_request_success[{4 * int(interval.rstrip('s'))}s]))"


def scrape_interval_cost(ctx: Context) -> Output:
    """d06.e1: Prometheus CPU (% of a core) and RSS (MiB) at scrape_interval 1/5/15 s, and QPS-graph smoothness."""
    intervals = [str(i) for i in ctx.param("intervals", ["1s", "5s", "15s"])]
    window = float(ctx.param("window_s", 60))
    t = Table.of(
        "scrape interval vs Prometheus cost",
        [("scrape_interval", ""), ("prometheus CPU", "% of a core"), ("prometheus RSS", "MiB"),
         ("samples appended", "samples/s"), ("scrapes in window", "samples/series"), ("QPS graph variation", "% CV")],
        caption=f"Each interval gets a fresh Prometheus scraping the same Triton + exporter under the same load "
        f"for {window:.0f} s; variation = stdev/mean of the QPS panel query (rate window 4 x scrape interval, as "
        "Grafana's $__rate_interval) sampled every 1 s.",
    )  # fmt: skip
    with (
        observed_platform(ctx.workdir / "stack", services=["triton", "exporter", "prometheus"]) as s,
        metered_traffic(s, rps=float(ctx.param("rps", 30)), workers=3),
    ):
        for iv in intervals:
            with prometheus_for(s, ctx.workdir / f"prom-{iv}", iv) as (prom, pid):
                prom.wait_for("prometheus_tsdb_head_samples_appended_total", 30)
                t0 = time.time()
                a0 = prom.value("prometheus_tsdb_head_samples_appended_total") or 0.0
                use = measure_usage(pid, window)
                appended = ((prom.value("prometheus_tsdb_head_samples_appended_total") or 0.0) - a0) / window
                pts = query_range(prom, _qps(iv), t0, time.time(), 1)
                scrapes = prom.value(f"max(count_over_time(nv_inference_request_success[{int(window)}s]))") or 0
                t.add(iv, round(use.cpu_percent, 2), round(use.rss_mib, 1), round(appended, 1), int(scrapes),
                      round(cv_percent([v for _, v in pts]), 1))  # fmt: skip
    return Output(
        tables=[t],
        notes=[
            "A shorter interval costs CPU and samples in proportion. 'scrapes in window' is how many real samples "
            "each series got: everything between two scrapes is interpolation by rate()'s extrapolation, so a "
            "15 s interval cannot show a burst shorter than about a minute (rate window 4 x interval).",
            "Match scrape_interval to how often the target updates: Triton refreshes its metrics every "
            "--metrics-interval-ms (1000 ms here); scraping faster than that only repeats values.",
        ],
    )


def bucket_stability(ctx: Context) -> Output:
    """d06.e2: P95/P99 from coarse vs fine buckets (same requests), their stability and the series each costs."""
    window = float(ctx.param("window_s", 60))
    t = Table.of(
        "coarse vs fine latency buckets",
        [("buckets", ""), ("bucket series", "series"), ("P95 mean", "ms"), ("P95 variation", "% CV"),
         ("P99 mean", "ms"), ("P99 variation", "% CV"), ("exact P95", "ms"), ("exact P99", "ms"),
         ("P99 error vs exact", "%")],
        caption="Two load generators, one per bucket layout, send the same rate at the same Triton at the same time; "
        "quantiles are histogram_quantile over rate(...[15s]) sampled every 1 s.",
    )  # fmt: skip
    series = Series("P99 over time", x=Column("time", "s"), y=Column("P99", "ms"))
    with observed_platform(ctx.workdir / "stack", services=["triton", "exporter", "prometheus"]) as s:
        rps = float(ctx.param("rps", 30))
        with (
            metered_traffic(s, "fine", rps=rps, workers=2, buckets="fine", keep_samples=True) as fine,
            metered_traffic(s, "coarse", rps=rps, workers=2, buckets="coarse", keep_samples=True) as coarse,
        ):
            s.prom.wait_for('count(up{job="loadgen"} == 1)', 30, lambda v: v >= 2)
            time.sleep(window)  # the measured window: both generators running
            t1 = time.time()
            for name, tr in (("fine", fine), ("coarse", coarse)):
                b = f'lab_loadgen_request_duration_seconds_bucket{{generator="{name}"}}'
                q = {p: query_range(s.prom, f"histogram_quantile({p}, sum by (le) (rate({b}[15s])))",
                                    t1 - window + 15, t1, 1) for p in (0.95, 0.99)}  # fmt: skip
                p95 = [v * 1000 for _, v in q[0.95]]
                p99 = [v * 1000 for _, v in q[0.99]]
                ex95, ex99 = exact_quantile(tr.samples, 0.95) * 1000, exact_quantile(tr.samples, 0.99) * 1000
                m99 = sum(p99) / len(p99) if p99 else float("nan")
                t.add(name, len(BUCKETS[name]) + 1, round(sum(p95) / max(1, len(p95)), 2), round(cv_percent(p95), 1),
                      round(m99, 2), round(cv_percent(p99), 1), round(ex95, 2), round(ex99, 2),
                      round(100 * (m99 - ex99) / ex99, 1))  # fmt: skip
                for tt, v in q[0.99]:
                    series.point(name, round(tt - t1 + window, 1), round(v * 1000, 3))
    return Output(
        tables=[t],
        series=[series],
        notes=[
            "Coarse buckets interpolate linearly across a whole decade, so P99 lands wherever the bucket's "
            "straight line puts it: biased and jumpy when the true P99 sits inside a wide bucket. Fine buckets "
            "cost one series per bucket per label set (and per target).",
            "'exact' is the nearest-rank quantile of every latency the client measured in the run (not only the "
            "window), so it is the reference for bias, not a time series.",
        ],
    )


RAW = "sum by (instance, job, model) (rate(nv_inference_request_success[1m]))"
RECORDED = "model:nv_inference_request_success:rate1m"


def recording_rule_speed(ctx: Context) -> Output:
    """d06.e3 / d13.e4: query time of the raw QPS expression vs its recording rule, under load, over a range."""
    reps = int(ctx.param("repeats", 30))
    range_s = float(ctx.param("range_s", 300))
    warm = float(ctx.param("warmup_s", 30))
    t = Table.of(
        "raw query vs recording rule",
        [("query", ""), ("mean", "ms"), ("p95", "ms"), ("samples loaded", "samples"), ("result points", "points")],
        caption=f"query_range over the last {range_s:.0f} s at 1 s resolution, {reps} repeats each, while the load "
        "generator runs; samples loaded from Prometheus' own stats=all.",
    )
    with (
        observed_platform(ctx.workdir / "stack", services=["triton", "exporter", "prometheus"]) as s,
        metered_traffic(s, rps=float(ctx.param("rps", 40)), workers=3),
    ):
        s.prom.wait_for(RECORDED, 60)
        time.sleep(warm)
        for name, expr in (("raw rate()", RAW), ("recording rule", RECORDED)):
            times, loaded, points = [], 0, 0
            for _ in range(reps):
                end = time.time()
                t0 = time.perf_counter()
                d = s.prom.get(
                    "/api/v1/query_range",
                    {"query": expr, "start": end - range_s, "end": end, "step": 1, "stats": "all"},
                )
                times.append((time.perf_counter() - t0) * 1000)  # fmt: skip
                loaded = int(d.get("stats", {}).get("samples", {}).get("totalQueryableSamples", 0))
                points = sum(len(r["values"]) for r in d["result"])
            times.sort()
            t.add(name, round(sum(times) / len(times), 2), round(exact_quantile(times, 0.95), 2), loaded, points)
    return Output(
        tables=[t],
        notes=[
            "The recording rule reads one pre-computed series per model; the raw expression reads every underlying "
            "sample of the range plus its 1m lookback for each step. With one model the absolute gap is small; "
            "it grows with the number of series the raw expression aggregates and the dashboards that repeat it.",
            f"Expressions: raw = {RAW}; rule = {RECORDED}.",
        ],
    )


def cardinality(ctx: Context) -> Output:
    """d06.e4: a gauge with N label values: Prometheus head series and RSS as it grows, then after rollback."""
    steps = [int(n) for n in ctx.param("steps", [2500, 5000, 10000, 20000])]
    settle = float(ctx.param("settle_s", 10))
    t = Table.of(
        "high-cardinality gauge",
        [("phase", ""), ("label values", "values"), ("head series", "series"), ("prometheus RSS", "MiB")],
        caption="One gauge lab_cardinality_demo{id=...} exported by this process and scraped every 1 s.",
    )
    series = Series("Prometheus memory vs series", x=Column("head series", "series"), y=Column("RSS", "MiB"))
    with observed_platform(ctx.workdir / "stack", services=["prometheus"]) as s:
        pid = pid_of(s.platform, "prometheus")
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
            for n in steps:
                for i in range(n):
                    g.labels(str(i)).set(i)
                s.prom.wait_for("prometheus_tsdb_head_series", 60, lambda v, n=n: v >= base + n)
                time.sleep(settle)
                rss = measure_usage(pid, 0.2).rss_mib
                head = s.prom.value("prometheus_tsdb_head_series") or 0
                t.add("grown", n, int(head), round(rss, 1))
                series.point("growth", head, rss)
            g.clear()
            target.unlink()
            time.sleep(settle)
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


def alert_chain(ctx: Context) -> Output:
    """d06.e5: a load step pushes P99 over the threshold; time of each link, load step -> webhook notification."""
    factor = float(ctx.param("threshold_factor", 3.0))
    alert_for = str(ctx.param("alert_for", "15s"))
    t = Table.of("alert chain timing", [("stage", ""), ("time since load step", "s"), ("detail", "")])
    with (
        observed_platform(ctx.workdir / "stack", "1s", p99_threshold_s=60.0, alert_for=alert_for) as s,
        metered_traffic(s, "base", rps=float(ctx.param("base_rps", 10)), workers=2),
    ):
        base = s.prom.wait_for("model:lab_loadgen_request_duration_seconds:p99_1m", 60)
        time.sleep(float(ctx.param("baseline_s", 20)))
        base = s.prom.value("max(model:lab_loadgen_request_duration_seconds:p99_1m)") or base
        threshold = round(max(base * factor, 0.005), 4)
        _set_threshold(s, threshold, alert_for)
        t0 = time.time()
        with metered_traffic(s, "step", rps=0, workers=int(ctx.param("step_workers", 16))):
            crossed = _until(
                lambda: (
                    s.prom.value(f"max(model:lab_loadgen_request_duration_seconds:p99_1m) > {threshold}") is not None
                ),
                120,
            )
            firing = _until(lambda: bool(s.prom.query('ALERTS{alertstate="firing", alertname=~"TritonP99.*"}')), 120)
            got = _until(lambda: bool(_p99_notes(s.notifications)), 120)  # fmt: skip
            notes = _p99_notes(s.notifications)
        t.add("load step (16 closed-loop workers added)", 0.0, f"threshold {threshold * 1000:.1f} ms")
        t.add("P99 recording rule over threshold", _rel(crossed, t0), "")
        t.add(f"alert firing in Prometheus (for: {alert_for})", _rel(firing, t0), "")
        t.add(
            "notification at webhook",
            _rel(got, t0),
            f"{notes[0]['labels']['alertname']} via {notes[0]['receiver']}" if notes else "none",
        )
    return Output(
        tables=[t],
        notes=[
            f"Baseline P99 {base * 1000:.1f} ms at the base rate; threshold = {factor} x baseline. The chain is "
            "recording rule (1 s evaluation) -> alert `for` -> Prometheus sends to Alertmanager -> group_wait "
            "(0 s critical, 1 s warning in the local drill config) -> webhook.",
            "Grafana-managed alerts are not used: Grafana cannot run here; the same rule would run in the cluster's "
            "Prometheus and route through the same Alertmanager tree.",
        ],
    )


def _set_threshold(s: object, threshold: float, alert_for: str) -> None:
    from ailab.observability.generate import dump_yaml, rule_files

    rules = rule_files(threshold, alert_for)["alerts.yaml"]
    (Path(s.rules_dir) / "alerts.yaml").write_text(dump_yaml(rules))  # type: ignore[attr-defined]
    s.prom.reload()  # type: ignore[attr-defined]


def _until(pred: object, timeout_s: float) -> float | None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if pred():  # type: ignore[operator]
            return time.time()
        time.sleep(0.2)
    return None


def _rel(ts: float | None, t0: float) -> float | str:
    return round(ts - t0, 2) if ts is not None else "not reached"


def _p99_notes(path: Path) -> list[dict]:
    return webhook.alerts(path, "TritonP99LatencyCritical") + webhook.alerts(path, "TritonP99LatencyHigh")
