"""d32.e1's fixed-rate comparison and server-counted numbers, without a server: which metric readings count as
'under load' (servercount.steady), the lab window's reading, and the parameters' bounds (named in the error)."""

from __future__ import annotations

import math

import pytest
from pydantic import ValidationError

from workloads.serving.experiments.drivers import DriversParams, server_fields
from workloads.serving.metrics import ModelCounters
from workloads.serving.servercount import Sampler, from_window, steady


def reading(t: float, n: float, request_us_each: float = 500.0) -> tuple[float, ModelCounters]:
    return t, ModelCounters(request_success=n, request_us=n * request_us_each, queue_us=n * 100.0)


def test_steady_counts_only_the_readings_taken_under_load():
    # idle, idle, then 1000 req/s from t=0.25 to t=1.05, then idle: the edge readings (0.3 and 1.1) are partial
    samples = [reading(0.0, 0), reading(0.2, 0), reading(0.3, 50), reading(0.5, 250), reading(0.7, 450),
               reading(0.9, 650), reading(1.1, 800), reading(1.3, 800)]  # fmt: skip
    sc = steady(samples)
    assert sc is not None
    assert sc.requests == 600 and math.isclose(sc.seconds, 0.6)  # from the 0.3 reading to the 0.9 one
    assert math.isclose(sc.throughput_rps, 1000.0)
    assert math.isclose(sc.request_us, 500.0) and math.isclose(sc.queue_us, 100.0)


def test_steady_refuses_a_run_with_too_few_readings_under_load():
    assert steady([reading(0.0, 0), reading(0.1, 10), reading(0.2, 20)]) is None  # one reading inside: no span
    assert steady([reading(0.0, 5), reading(0.1, 5), reading(0.2, 5)]) is None  # nothing counted
    assert steady([reading(0.0, 0)]) is None


def test_lab_window_reading_uses_loadgen_keys_and_missing_counters_are_nan():
    sc = from_window({"requests": 2000.0, "request_us": 800.0, "queue_us": 300.0, "compute_infer_us": 200.0}, 2.0)
    assert sc is not None and sc.throughput_rps == 1000.0 and sc.request_us == 800.0
    assert from_window({}, 2.0) is None
    f = server_fields(None, 1.5)
    assert f["mean"] == 1.5 and all(math.isnan(f[k]) for k in ("srv_rps", "srv_ms", "srv_queue_ms"))
    g = server_fields(sc, 1.5)
    assert g["srv_rps"] == 1000.0 and g["srv_ms"] == 0.8 and g["srv_infer_ms"] == 0.2


@pytest.mark.parametrize(
    "field,value,allowed",
    [
        ("open_rate_fractions", [0.25, 1.2], "less than or equal to 0.9"),
        ("open_rate_fractions", [0.0], "greater than 0"),
        ("open_repeats", 0, "greater than or equal to 1"),
        ("metrics_period_s", 5.0, "less than or equal to 1"),
        ("open_duration_s", -1.0, "greater than 0"),
        ("pa_modes", ["sync", "threads"], "'sync' or 'async'"),
        ("pa_modes", [], "at least 1 item"),
        ("host_windows", -1, "greater than or equal to 0"),
        ("host_windows", 21, "less than or equal to 20"),
        ("host_windows", 2.0, "valid integer"),
        ("host_window_s", 0.0, "greater than 0"),
    ],
)
def test_bad_fixed_rate_parameters_name_the_field(field, value, allowed):
    with pytest.raises(ValidationError) as err:
        DriversParams(**{field: value})
    assert field in str(err.value) and allowed in str(err.value)


def test_a_fraction_given_twice_is_refused():
    with pytest.raises(ValidationError, match=r"open_rate_fractions \[0.25, 0.25\]: each fraction at most once"):
        DriversParams(open_rate_fractions=[0.25, 0.25])


def test_a_perf_analyzer_mode_given_twice_is_refused():
    with pytest.raises(ValidationError, match=r"pa_modes \['async', 'async'\]: each of sync, async at most once"):
        DriversParams(pa_modes=["async", "async"])


def test_the_lab_is_judged_against_each_perf_analyzer_mode_and_the_modes_against_each_other():
    from workloads.serving.experiments import drivers as d

    def run(name: str, rep: int, thr: float) -> d.Run:
        m = {"throughput": thr, "p50": 1.0, "p95": 2.0, "p99": 3.0, "cpu_us": 100.0, "srv_ms": 1.0}
        return name, rep, m, ["", "", "", ""]

    rows = [
        run("lab loadgen", 0, 1100.0), run("perf_analyzer", 0, 990.0), run("perf_analyzer async", 0, 1060.0),
        run("lab loadgen", 1, 1200.0), run("perf_analyzer async", 1, 1100.0), run("perf_analyzer", 1, 1010.0),
    ]  # fmt: skip
    t = d.Table.of("drivers", [(f"c{i}", "") for i in range(14)])
    agree = d.Table.of("agreement", [(f"c{i}", "") for i in range(16)])
    logged: list[str] = []

    class Ctx:
        log = logged.append

    d._tabulate(Ctx(), rows, "shared", "http", 8, t, agree)  # type: ignore[arg-type]
    # the drivers table's last column: each run against the first mode that ran (sync here, median 1000)
    assert [r[-1] for r in t.rows] == [110.0, 99.0, 106.0, 120.0, 110.0, 101.0]
    got = {(r[3], r[4]): (r[5], r[10], r[11], r[12], r[14]) for r in agree.rows}
    # (throughput ratio %, spread of driver %, spread of against %, throughput verdict, apart beyond the repeats)
    assert got == {
        ("lab loadgen", "perf_analyzer"): (115.0, 8.7, 2.0, "NOT MET", "yes"),
        ("lab loadgen", "perf_analyzer async"): (106.5, 8.7, 3.7, "MET", "no"),  # 1100 is in both ranges
        ("perf_analyzer async", "perf_analyzer"): (108.0, 3.7, 2.0, "MET", "yes"),  # the reference against itself
    }


def test_spread_and_apart_over_a_drivers_repeats():
    from workloads.serving.experiments.drivers import apart, spread

    assert spread([900.0, 1000.0, 1200.0]) == 30.0 and spread([1000.0]) == 0.0 and math.isnan(spread([]))
    assert apart([5.0, 6.0], [1.0, 4.9]) and apart([1.0], [2.0])
    assert not apart([1.0, 5.0], [4.0, 6.0]) and not apart([], [1.0])


def test_the_host_speed_probe_times_the_same_work_on_every_cpu_and_leaves_the_affinity_as_it_was():
    import os

    from workloads.serving.common import host_speed

    before = os.sched_getaffinity(0)
    got = host_speed(0.02, 3)
    assert os.sched_getaffinity(0) == before
    assert [cpu for cpu, _ in got] == sorted(before)
    assert all(len(secs) == 3 and all(0.0 < x < 1.0 for x in secs) for _, secs in got)
    assert host_speed(0.02, 0) == []


@pytest.mark.parametrize(("host", "word"), [([12.5, 30.0], "wider"), ([3.0, 10.0], "not wider")])
def test_the_host_speed_note_sets_the_machines_spread_against_the_tolerance(host, word):
    from workloads.serving.experiments import drivers as d

    speed = d.Table.of("host_speed", d.SPEED_COLS)
    for cpu, sp in enumerate(host):
        speed.add(cpu, 5, 5.0, 1.0, 0.9, 1.2, sp)
    cols = [(f"c{i}", "") for i in range(16)]
    cols[10] = d.SPREAD_COLS[0]  # where the agreement table holds the driver's own throughput spread
    agree = d.Table.of("agreement", cols)
    agree.add("shared", "http", 8, "lab loadgen", "perf_analyzer", *[100.0] * 5, 20.0, 25.0, "MET", "MET", "no", 50.0)
    agree.add("shared", "http", 8, "perf_analyzer async", "perf_analyzer", *[100.0] * 5, 41.5, 25.0, "MET", "MET",
              "no", 50.0)  # fmt: skip
    note = d._speed_note(speed, agree)
    assert f"spread by {host[0]:g}-{host[1]:g} %" in note and "at a point are 20-41.5 %" in note
    assert f"is {word} than the ±10 % tolerance" in note


def test_no_fractions_turns_the_open_loop_off_and_the_sampler_checks_its_period():
    assert DriversParams(open_rate_fractions=[]).open_rate_fractions == []
    with pytest.raises(ValueError, match=r"period_s 0\.001: allowed 0\.01\.\.5 s"):
        Sampler("http://127.0.0.1:1/metrics", "mlp", period_s=0.001)


def test_steady_can_keep_only_the_drivers_last_windows():
    # 1000 req/s from t=0.05 to t=0.95, then 2000 req/s until t=2.05: only the last second is the reported window
    samples = [reading(0.0, 0)]
    n, t = 0.0, 0.0
    while t < 2.0:
        t = round(t + 0.1, 1)
        n += 100 if t <= 1.0 else 200
        samples.append(reading(t, n))
    samples += [reading(2.1, n + 100), reading(2.2, n + 100)]
    whole, last = steady(samples), steady(samples, last_s=1.0)
    assert whole is not None and last is not None
    assert 1000 < whole.throughput_rps < 2000
    assert math.isclose(last.throughput_rps, 2000.0) and math.isclose(last.seconds, 1.0)
    assert steady(samples, last_s=60.0) == whole  # longer than the load: all of it


def test_perf_analyzers_windows_span_at_least_a_second_each():
    """Count windows start at 1 s (perf_analyzer's docs): 300 requests at 3,000 req/s still take 3 windows of 1 s,
    while 5,000 requests at 2,500 req/s take 3 windows of 2 s; no throughput, no span."""
    from types import SimpleNamespace

    from workloads.serving.experiments.drivers import pa_windows_s

    assert pa_windows_s(300, SimpleNamespace(throughput_rps=3000.0)) == pytest.approx(3.0)
    assert pa_windows_s(5000, SimpleNamespace(throughput_rps=2500.0)) == pytest.approx(6.0)
    assert pa_windows_s(300, SimpleNamespace(throughput_rps=0.0)) is None
