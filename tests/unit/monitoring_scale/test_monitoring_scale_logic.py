"""The pure parts of the monitoring-at-scale runners: synthetic history, the knee rule, store comparisons, and
that every rule and query they send parses (checked by the real promtool, nothing mocked)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
import yaml

from ailab.observability.tools import check_exprs
from workloads.monitoring_scale import stores
from workloads.monitoring_scale.experiments import alert_fire, cardinality_knee, long_windows, recording_windows
from workloads.monitoring_scale.federation import RAW_QUERY, RECORD, child_rules
from workloads.monitoring_scale.synth import FlatExporter, Fleet, flat_series, history, import_lines, write_openmetrics


def test_history_has_one_sample_per_step_for_every_series() -> None:
    fleet = Fleet(instances=2, routes=3)
    samples = list(history(fleet.series(), 0, 3600, 300))
    assert fleet.count() == 2 * (3 + 10 + 2)
    assert len(samples) == fleet.count() * 13
    by_series: dict[tuple[str, str], list[int]] = {}
    for fam, labels, v, _ in samples:
        by_series.setdefault((fam, labels), []).append(v)
    assert all(vals == sorted(vals) for vals in by_series.values())  # counters never go down within an hour


def test_openmetrics_history_becomes_a_tsdb_block(tmp_path: Path) -> None:
    series = flat_series(50, "lab_synth_disk")
    f = tmp_path / "h.om"
    n = write_openmetrics(series, f, 1_700_000_000, 1_700_003_600, 60)
    assert f.read_text().endswith("# EOF\n")
    p = subprocess.run(["promtool", "tsdb", "create-blocks-from", "openmetrics", "-q", str(f), str(tmp_path / "b")],
                       capture_output=True, text=True, check=False)  # fmt: skip
    assert p.returncode == 0, p.stderr
    samples, nseries, chunk_bytes = stores.block_stats(tmp_path / "b")
    assert (samples, nseries) == (n, 50) and chunk_bytes > 0


def test_import_lines_carry_millisecond_timestamps() -> None:
    body = b"".join(import_lines(flat_series(2, "m"), 1000.0, 1060.0, 60))
    lines = body.decode().splitlines()
    assert len(lines) == 4 and lines[0].startswith('m{pod="pod-0000000",shard="s0"} ') and lines[0].endswith(" 1000000")


def test_flat_exporter_renders_every_series_with_growing_values() -> None:
    e = FlatExporter(100)
    a, b = e.render(1000.0).decode().splitlines(), e.render(2000.0).decode().splitlines()
    assert len(a) == 101 and a[0].startswith("# TYPE")
    assert all(int(y.split()[-1]) >= int(x.split()[-1]) for x, y in zip(a[1:], b[1:], strict=True))
    e.resize(10)
    assert len(e.render(1.0).decode().splitlines()) == 11


def test_knee_is_the_first_step_that_falls_behind() -> None:
    rows = [
        {"n": 1000, "ratio": 1.0, "share": 0.01, "up": True},
        {"n": 10000, "ratio": 0.99, "share": 0.2, "up": True},
        {"n": 50000, "ratio": 0.7, "share": 0.3, "up": True},
        {"n": 90000, "ratio": 0.5, "share": 0.9, "up": True},
    ]
    assert cardinality_knee.knee(rows, 0.95, 0.5)[0] == 50000
    assert "scrape takes" in cardinality_knee.knee([{**rows[1], "share": 0.6}], 0.95, 0.5)[1]
    assert cardinality_knee.knee(rows[:2], 0.95, 0.5) == (None, "")


def test_relative_gap_and_nearest_rank() -> None:
    a = {"s": [(1.0, 10.0), (2.0, 20.0)]}
    assert stores.relative_gap(a, {"s": [(1.0, 10.0), (2.0, 20.0)]}) == 0.0
    assert stores.relative_gap(a, {"s": [(1.0, 11.0), (2.0, 22.0)]}) == pytest.approx(1 / 11)
    assert stores.nearest_rank([5.0, 1.0, 3.0, 2.0, 4.0], 0.95) == 5.0
    assert stores.nearest_rank([1.0, 2.0], 0.5) == 1.0


def test_every_query_and_rule_the_runners_send_parses() -> None:
    exprs = {"federation raw": RAW_QUERY, "federation record": RECORD}
    exprs |= {f"long {k}": v for k, v in long_windows.queries(300, 300).items()}
    for k, (raw, rec) in recording_windows.pairs("10m").items():
        exprs |= {f"{k} raw": raw, f"{k} rec": rec}
    exprs |= {"agg": cardinality_knee.AGG, "one": cardinality_knee.ONE}
    assert check_exprs(exprs) == {}


@pytest.mark.parametrize(
    "rule_file",
    [child_rules()["fleet.yaml"], recording_windows.rules("10m"), alert_fire.drill_rules()],
    ids=["federation", "recording", "alerts"],
)
def test_rule_files_pass_promtool(tmp_path: Path, rule_file: dict) -> None:
    f = tmp_path / "rules.yaml"
    f.write_text(yaml.safe_dump(rule_file))
    p = subprocess.run(["promtool", "check", "rules", str(f)], capture_output=True, text=True, check=False)
    assert p.returncode == 0, p.stdout + p.stderr


def test_window_params_reject_bad_values() -> None:
    with pytest.raises(ValueError, match="windows"):
        long_windows.LongWindowParams(windows=["30x"])
    with pytest.raises(ValueError, match="rate_window"):
        recording_windows.RuleLatencyParams(rate_window="10s")
    assert long_windows.LongWindowParams().windows[-1] == "30d"
