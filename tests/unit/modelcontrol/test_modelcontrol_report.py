"""The hot-update report on a synthetic run (no server): requests fall into the steady and switch phases by send
time, each switch's window ends when it settled, failures and percentiles are counted per window, scrapes become
per-version rates, and log lines land on the timeline's clock."""

from __future__ import annotations

import time
from types import SimpleNamespace

from workloads.modelcontrol.control import Background, Event
from workloads.modelcontrol.experiments.hot_update import HotUpdateParams
from workloads.modelcontrol.update import Scrape, Scraper, report


def rows(out, name):
    t = next(t for t in out.tables if t.name == name)
    return [dict(zip([c.name for c in t.columns], r, strict=True)) for r in t.rows]


def synthetic():
    p = HotUpdateParams(start=1, switches=[2, 1], phase_s=1.0, switch_budget_s=2.0, bucket_s=0.5, scrape_s=0.5)
    w0 = 100.0  # perf_counter of the window start
    # one request every 0.1 s over 8 s; 10 ms steady, 50 ms inside switches, one failure in the first switch
    tl = []
    for k in range(80):
        t = k / 10
        in_switch = 1.0 <= t < 2.5 or 4.5 <= t < 5.5
        tl.append((t, 50.0 if in_switch else 10.0, "server" if abs(t - 1.5) < 1e-9 else ""))
    res = SimpleNamespace(
        timeline=tl,
        window_start=w0,
        window_s=8.0,
        errors={"server": 1},
        error_examples={"server": "boom"},
        host_cpu_busy=0.5,
        generator_cpu=0.1,
    )
    bg = Background(spec=None, events=[Event("to v2", w0 + 1.0, w0 + 1.2), Event("to v1", w0 + 4.5, w0 + 4.6)])
    bg.result = res
    settles = [(w0 + 1.0, 1.5, (2,), 2), (w0 + 4.5, 1.0, (1,), 1)]
    sc = Scraper("http://unused", 0.5)
    sc.samples = [
        Scrape(w0 + 0.0, {1: 0.0}, 0.0, 0.0),
        Scrape(w0 + 1.0, {1: 10.0}, 0.0, 1.0),
        Scrape(w0 + 2.0, {1: 12.0, 2: 8.0}, 1.0, 0.0),
    ]
    wall0 = time.time()
    hms = time.strftime("%H:%M:%S", time.localtime(wall0 + 1.2)) + f".{int(((wall0 + 1.2) % 1) * 1e6):06d}"
    return report(p, bg, settles, sc, [(hms, "loading", 2)], wall0, w0, "host: test")


def test_phases_split_by_switch_windows_with_exact_counts_and_percentiles():
    ph = rows(synthetic(), "phases")
    assert [r["phase"] for r in ph] == ["steady v1", "switch to v2", "steady v2", "switch to v1", "steady v1"]
    assert [(r["from"], r["to"]) for r in ph] == [(0.0, 1.0), (1.0, 2.5), (2.5, 4.5), (4.5, 5.5), (5.5, 8.0)]
    assert [r["requests"] for r in ph] == [10, 15, 20, 10, 25]
    assert [r["failed"] for r in ph] == [0, 1, 0, 0, 0]
    assert [r["p99"] for r in ph] == [10.0, 50.0, 10.0, 50.0, 10.0]


def test_switch_rows_count_what_was_sent_until_settled():
    sw = rows(synthetic(), "switches")
    assert [(r["switch"], r["requests during"], r["failed during"]) for r in sw] == [("to v2", 15, 1), ("to v1", 10, 0)]
    assert [r["until only it READY"] for r in sw] == [1.5, 1.0]
    assert [r["served after"] for r in sw] == [2, 1]
    assert sw[0]["log: loading / unloaded"] == "1 / 0" and sw[1]["log: loading / unloaded"] == "0 / 0"


def test_scrapes_become_per_version_rates_and_log_lines_land_on_the_timeline():
    out = synthetic()
    m = rows(out, "metrics")
    assert (m[0]["version"], m[0]["successes/s"]) == (1, 10.0)
    assert {(r["version"], r["successes/s"]) for r in m[1:]} == {(1, 2.0), (2, 8.0)}
    assert m[-1]["failures/s (all versions)"] == 1.0
    (log,) = rows(out, "log")
    assert log["event"] == "loading" and abs(log["at"] - 1.2) < 0.01
