"""The snapshot renderer's pure parts: Grafana variables, legends, units and time ranges (no Prometheus needed)."""

from __future__ import annotations

import pytest

from workloads.telemetry.snapshot import SnapshotError, apply, duration_s, legend, parse_time, scale, variables

DASH = {
    "templating": {
        "list": [
            {"name": "datasource", "type": "datasource"},
            {"name": "instance", "type": "query", "allValue": ".*"},
            {"name": "model", "type": "query", "allValue": ".*"},
        ]
    }
}


def test_variables_default_to_all_and_take_given_values() -> None:
    assert variables(DASH, {"model": "linear"}) == {"instance": ".*", "model": "linear"}


def test_an_unknown_variable_is_refused_naming_it() -> None:
    with pytest.raises(SnapshotError, match=r"--var modle: the dashboard has no such variable \(has: datasource"):
        variables(DASH, {"modle": "x"})


def test_rate_interval_follows_grafana() -> None:
    # max(step + scrape, 4 x scrape): 4 x 5 s = 20 s beats 1 + 5; with a 60 s step, 60 + 5 = 65 s
    expr = 'rate(x{model=~"$model"}[$__rate_interval])'
    assert apply(expr, {"model": "a|b"}, 1, 5, 300) == 'rate(x{model=~"a|b"}[20s])'
    assert apply(expr, {"model": ".*"}, 60, 5, 3600) == 'rate(x{model=~".*"}[65s])'


def test_longer_variable_names_are_not_eaten_by_shorter_ones() -> None:
    assert apply("$models $model ${model} [[model]]", {"model": "m", "models": "M"}, 1, 1, 60) == "M m m m"


def test_a_variable_without_value_is_an_error() -> None:
    with pytest.raises(SnapshotError, match=r"variable '\$gpu' has no value"):
        apply('x{gpu="$gpu"}', {}, 1, 1, 60)


def test_legend_format_and_fallback() -> None:
    assert legend("p99 {{model}}", {"model": "mlp"}, "e") == "p99 mlp"
    assert legend("", {"__name__": "up", "job": "a"}, "up") == "{job=a}"


@pytest.mark.parametrize(
    ("unit", "peak", "want"),
    [("s", 0.0009, ("µs", 1e-6)), ("s", 3, ("s", 1.0)), ("µs", 20, ("µs", 1.0)), ("percentunit", 0.5, ("%", 0.01)),
     ("bytes", 3 * 2**30, ("GiB", 2**30)), ("reqps", 9, ("req/s", 1.0)), ("s", 0, ("s", 1.0))],
)  # fmt: skip
def test_units_are_scaled_like_grafana(unit: str, peak: float, want: tuple[str, float]) -> None:
    got = scale(unit, peak)
    assert got[0] == want[0] and got[1] == pytest.approx(want[1])


def test_time_ranges() -> None:
    assert parse_time("now-15m", now=1000.0) == 100.0
    assert parse_time("now", now=5.0) == 5.0
    assert parse_time("1700000000") == 1700000000.0
    assert duration_s("1h30m") == 5400
    with pytest.raises(SnapshotError, match="duration '15x'"):
        parse_time("now-15x")
    with pytest.raises(SnapshotError, match="time 'yesterday'"):
        parse_time("yesterday")
