"""What a scrape interval costs Prometheus (CPU, memory, samples) and what it costs the QPS graph (d06.e1)."""

from __future__ import annotations

import time
from typing import Annotated

from pydantic import Field, StringConstraints

from ailab.contract import Context, Output, Params, Table
from workloads.observability.metering import measure_usage, metered_traffic, prometheus_for
from workloads.observability.quantiles import cv_percent
from workloads.observability.stack import observed_platform

Interval = Annotated[str, StringConstraints(pattern=r"^[1-9][0-9]*s$")]


class ScrapeCostParams(Params):
    intervals: list[Interval] = Field(default=["1s", "5s", "15s"], min_length=1, description="e.g. 5s")
    window_s: float = Field(default=60, gt=0, description="measured window per interval, s")
    rps: float = Field(default=30, gt=0, description="load generator rate, req/s")


def _qps(interval: str) -> str:
    """The QPS panel query with Grafana's $__rate_interval for this scrape interval (4 x scrape interval)."""
    return f"sum(rate(nv_inference_request_success[{4 * int(interval.rstrip('s'))}s]))"


def scrape_interval_cost(ctx: Context, p: ScrapeCostParams) -> Output:
    """Prometheus CPU (% of a core) and RSS (MiB) at each scrape interval, and QPS-graph smoothness."""
    window = p.window_s
    t = Table.of(
        "scrape interval vs Prometheus cost",
        [("scrape_interval", ""), ("prometheus CPU", "% of a core"), ("prometheus RSS", "MiB"),
         ("samples appended", "samples/s"), ("scrapes in window", "samples/series"), ("QPS graph variation", "% CV")],
        caption=f"Each interval gets a fresh Prometheus scraping the same Triton + exporter under the same load "
        f"for {window:.0f} s; variation = stdev/mean of the QPS panel query (rate window 4 x scrape interval, as "
        "Grafana's $__rate_interval) sampled every 1 s.",
    )  # fmt: skip
    with (
        observed_platform(ctx.platform, ctx.workdir / "stack", services=["triton", "exporter", "prometheus"]) as s,
        metered_traffic(s, rps=p.rps, workers=3),
    ):
        for iv in p.intervals:
            with prometheus_for(ctx.platform, s, ctx.workdir / f"prom-{iv}", iv) as (prom, pid):
                prom.wait_for("prometheus_tsdb_head_samples_appended_total", 30)
                t0 = time.time()
                a0 = prom.value("prometheus_tsdb_head_samples_appended_total") or 0.0
                use = measure_usage(pid, window)
                appended = ((prom.value("prometheus_tsdb_head_samples_appended_total") or 0.0) - a0) / window
                pts = prom.query_range(_qps(iv), t0, time.time(), 1)
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
