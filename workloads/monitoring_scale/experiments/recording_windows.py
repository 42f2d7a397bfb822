"""Recording rules that precompute the expensive dashboard queries, over growing windows of backfilled history:
query latency, samples read and Prometheus CPU per query with and without them (d68.e1), and a concurrent query
load over large windows, raw vs recorded: throughput, latency, CPU and memory (d68.e2).

The rules are backfilled over the whole history with `promtool tsdb create-blocks-from rules` (what an operator
does after adding a rule), so the recorded series cover every window as they would after weeks of evaluation.
"""

from __future__ import annotations

import shutil
import statistics
import subprocess
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import psutil
import yaml
from pydantic import Field

from ailab.contract import Column, Context, Output, Params, Series, Table, durations
from workloads.monitoring_scale import stores
from workloads.monitoring_scale.experiments import Window
from workloads.monitoring_scale.synth import HIST, REQ, Fleet
from workloads.observability.prom import Prom, PromError


def rules(rate_window: str) -> dict:
    """The recording rules (level:metric:operation) and the raw expressions they replace."""
    return {
        "groups": [
            {
                "name": "fleet",
                "rules": [
                    {"record": f"route:{REQ}:rate{rate_window}",
                     "expr": f"sum by (route) (rate({REQ}[{rate_window}]))"},
                    {"record": f"le:{HIST}_bucket:rate{rate_window}",
                     "expr": f"sum by (le) (rate({HIST}_bucket[{rate_window}]))"},
                    {"record": f"fleet:{HIST}:p99_{rate_window}",
                     # self-contained: promtool's rule backfill evaluates against the server, where the rule
                     # above does not exist yet, so a rule built on another recorded series would backfill empty
                     "expr": f"histogram_quantile(0.99, sum by (le) (rate({HIST}_bucket[{rate_window}])))"},
                ],
            }
        ]
    }  # fmt: skip


def pairs(rate_window: str) -> dict[str, tuple[str, str]]:
    """Panel -> (raw expression, recorded series)."""
    return {
        "QPS by route": (f"sum by (route) (rate({REQ}[{rate_window}]))", f"route:{REQ}:rate{rate_window}"),
        "fleet P99": (
            f"histogram_quantile(0.99, sum by (le) (rate({HIST}_bucket[{rate_window}])))",
            f"fleet:{HIST}:p99_{rate_window}",
        ),
    }


class HistoryParams(Params):
    history_days: int = Field(default=7, ge=1, le=30, description="history backfilled, days")
    instances: int = Field(default=30, ge=1, description="servers in the synthetic fleet")
    history_step_s: int = Field(default=120, ge=15, description="resolution of the history (its scrape interval), s")
    rate_window: str = Field(default="10m", pattern=r"^[1-9][0-9]*m$", description="rate() window of the rules")
    points: int = Field(default=250, ge=10, description="points per query_range, step = window / points")


class RuleLatencyParams(HistoryParams):
    windows: list[Window] = Field(default=["1h", "6h", "1d", "7d"], min_length=1, description="e.g. 6h, 7d")
    repeats: int = Field(default=7, ge=1, description="timed repeats per query")


class RuleLoadParams(HistoryParams):
    windows: list[Window] = Field(default=["1d", "7d"], min_length=1, description="e.g. 1d, 7d")
    clients: int = Field(default=4, ge=1, description="concurrent query clients")
    load_s: float = Field(default=30, gt=0, description="load duration per window and variant, s")


@dataclass
class History:
    prom: Prom
    pid: int
    end: float
    setup: Table


@contextmanager
def with_rules(ctx: Context, p: HistoryParams) -> Iterator[History]:
    """Raw history backfilled, the rules backfilled over it from a first Prometheus, then a second Prometheus on
    both, compacted, ready to query."""
    fleet = Fleet(instances=p.instances)
    end = (time.time() // 3600 - 1) * 3600
    start = end - p.history_days * stores.DAY
    state = ctx.workdir / "state"
    data = state / "data" / "prometheus"
    shutil.rmtree(data, ignore_errors=True)
    setup = Table.of("set-up", [("step", ""), ("time", "s"), ("detail", "")])
    t0 = time.monotonic()
    n = stores.backfill_prometheus(fleet.series(), data, start, end, p.history_step_s, ctx.workdir / "om")
    setup.add("raw history: promtool create-blocks-from openmetrics", round(time.monotonic() - t0, 1),
              f"{n} samples, {fleet.count()} series, {p.history_days} d at {p.history_step_s} s")  # fmt: skip
    rule_file = ctx.workdir / "fleet-rules.yaml"
    rule_file.write_text(yaml.safe_dump(rules(p.rate_window), sort_keys=False))
    opts = {"prometheus.scrape": [], "prometheus.retention": f"{p.history_days + 30}d"}
    rule_blocks = ctx.workdir / "rule-blocks"
    shutil.rmtree(rule_blocks, ignore_errors=True)
    with ctx.platform(services=["prometheus"], state_dir=state, options=opts) as plat:
        t1 = time.monotonic()
        proc = subprocess.run(
            ["promtool", "tsdb", "create-blocks-from", "rules", f"--url={plat.url('prometheus')}",
             f"--start={int(start)}", f"--end={int(end)}", f"--eval-interval={p.history_step_s}s",
             f"--output-dir={rule_blocks}", str(rule_file)],
            capture_output=True, text=True, check=False,
        )  # fmt: skip
        if proc.returncode != 0:
            raise PromError(f"promtool create-blocks-from rules: {(proc.stdout + proc.stderr).strip()[-400:]}")
        setup.add("rules: promtool create-blocks-from rules", round(time.monotonic() - t1, 1),
                  f"{len(list(rule_blocks.glob('*/meta.json')))} blocks, eval every {p.history_step_s} s")  # fmt: skip
    for b in rule_blocks.iterdir():
        if (b / "meta.json").exists():
            shutil.move(str(b), str(data / b.name))
    with ctx.platform(services=["prometheus"], state_dir=state, options=opts) as plat:
        prom = Prom(plat.url("prometheus"))
        t2 = time.monotonic()
        before, after = stores.wait_compacted(prom)
        setup.add("Prometheus compaction", round(time.monotonic() - t2, 1), f"{before} blocks -> {after}")
        yield History(prom, plat.record("prometheus").pid, end, setup)


def _cpu_s(pid: int) -> float:
    c = psutil.Process(pid).cpu_times()
    return c.user + c.system


def rule_latency(ctx: Context, p: RuleLatencyParams) -> Output:
    """Per window and panel: raw vs recorded query time (ms), samples read, Prometheus CPU per query (ms)."""
    host = stores.host_note()
    t = Table.of(
        "raw expression vs recording rule",
        [("window", ""), ("panel", ""), ("query", ""), ("median", "ms"), ("p95", "ms"), ("samples read", "samples"),
         ("Prometheus CPU per query", "ms"), ("speed-up", "x")],
        caption=f"query_range with {p.points} points (step = window / points), {p.repeats} repeats each, one at a "
        "time; samples read from Prometheus' stats=all; CPU = the Prometheus process' user+system time over the "
        "repeats / repeats.",
    )  # fmt: skip
    plot = Series("median query time by window", x=Column("window", "h"), y=Column("median", "ms"), log_x=True,
                  log_y=True)  # fmt: skip
    with with_rules(ctx, p) as h:
        for w in p.windows:
            span = durations.seconds(w)
            step = max(span / p.points, 15.0)
            for panel, (raw, rec) in pairs(p.rate_window).items():
                raw_med = None
                for kind, expr in (("raw", raw), ("recorded", rec)):
                    c0 = _cpu_s(h.pid)
                    runs = [stores.query_range(h.prom.url, expr, h.end - span, h.end, step) for _ in range(p.repeats)]
                    cpu = (_cpu_s(h.pid) - c0) / p.repeats * 1000
                    d = h.prom.get("/api/v1/query_range", {"query": expr, "start": h.end - span, "end": h.end,
                                                           "step": step, "stats": "all"})  # fmt: skip
                    read = int(d.get("stats", {}).get("samples", {}).get("totalQueryableSamples", 0))
                    ms = [r.ms for r in runs]
                    med = statistics.median(ms)
                    if runs[-1].points == 0:
                        raise PromError(f"{expr} over {w}: no points (history or rule backfill missing)")
                    raw_med = med if kind == "raw" else raw_med
                    t.add(w, panel, kind, round(med, 2), round(stores.nearest_rank(ms, 0.95), 2), read, round(cpu, 1),
                          round(raw_med / med, 1) if kind == "recorded" and raw_med else "-")  # fmt: skip
                    plot.point(f"{panel}: {kind}", span / 3600, med)
        setup = h.setup
    return Output(
        tables=[t, setup],
        series=[plot],
        notes=[
            host,
            "The raw expression reads every input series' samples of the window plus the rate lookback at each step; "
            "the recorded series is already aggregated (one series per route, one for the fleet P99), so it reads a "
            "handful of samples per step whatever the fleet's size. The price is paid once, at rule evaluation.",
            f"Rules: {[r['record'] + ' = ' + r['expr'] for r in rules(p.rate_window)['groups'][0]['rules']]}",
        ],
    )


def rule_load(ctx: Context, p: RuleLoadParams) -> Output:
    """`clients` concurrent clients for `load_s` per window: queries/s, latency, Prometheus CPU and RSS."""
    host = stores.host_note()
    t = Table.of(
        "concurrent large-window queries",
        [("window", ""), ("query", ""), ("clients", "clients"), ("queries", "queries/s"), ("median", "ms"),
         ("p95", "ms"), ("Prometheus CPU", "% of a core"), ("Prometheus RSS peak", "MiB")],
        caption=f"{p.clients} closed-loop clients, each cycling through the dashboard's two panels (QPS by route, "
        f"fleet P99) for {p.load_s:.0f} s per row; CPU averaged over the row, RSS sampled every 0.5 s.",
    )  # fmt: skip
    with with_rules(ctx, p) as h:
        proc = psutil.Process(h.pid)
        for w in p.windows:
            span = durations.seconds(w)
            step = max(span / p.points, 15.0)
            for kind in ("raw", "recorded"):
                exprs = [raw if kind == "raw" else rec for raw, rec in pairs(p.rate_window).values()]
                stop = threading.Event()
                times: list[float] = []

                def client(
                    i: int,
                    exprs: list[str] = exprs,
                    stop: threading.Event = stop,
                    times: list[float] = times,
                    span: float = span,
                    step: float = step,
                ) -> None:
                    k = i
                    while not stop.is_set():
                        r = stores.query_range(h.prom.url, exprs[k % len(exprs)], h.end - span, h.end, step)
                        times.append(r.ms)
                        k += 1  # fmt: skip

                c0, t0 = _cpu_s(h.pid), time.monotonic()
                threads = [threading.Thread(target=client, args=(i,)) for i in range(p.clients)]
                for x in threads:
                    x.start()
                peak = 0.0
                while time.monotonic() - t0 < p.load_s:
                    peak = max(peak, proc.memory_info().rss / 2**20)
                    time.sleep(0.5)
                stop.set()
                for x in threads:
                    x.join()
                el = time.monotonic() - t0
                cpu = (_cpu_s(h.pid) - c0) / el * 100
                t.add(w, kind, p.clients, round(len(times) / el, 2), round(statistics.median(times), 1),
                      round(stores.nearest_rank(times, 0.95), 1), round(cpu, 1), round(peak, 1))  # fmt: skip
        setup = h.setup
    return Output(
        tables=[t, setup],
        notes=[
            host,
            "This host has 2 cores shared with other work: a query load that saturates them shows as queries/s "
            "flattening and latency growing with the window; the recorded rows show how much of that the rules "
            "remove.",
        ],
    )
