"""Quick runs' parameters of the multi-model experiments: d60.e2's flood warm-up, shortened by quick runs, keeps the
full runs' 2 s by default and is checked by name; the full runs' warm-ups and settle stay as measured; the quick runs
that borrow the run's Prometheus ask for it with its options."""

from __future__ import annotations

import pytest

from ailab.contract.params import ParamsError, validate
from workloads.multimodel.experiments.priorities import PriorityParams


def test_flood_warmup_defaults_to_the_measured_two_seconds() -> None:
    assert PriorityParams().flood_warmup_s == 2.0


@pytest.mark.parametrize("bad", [0.0, 31.0, "long"])
def test_a_bad_flood_warmup_names_the_field(bad) -> None:
    with pytest.raises(ParamsError, match="flood_warmup_s"):
        validate(PriorityParams, {"flood_warmup_s": bad})


def test_warmups_and_settle_default_to_what_the_full_runs_were_measured_with() -> None:
    from workloads.multimodel.experiments.curves import CurvesParams
    from workloads.multimodel.experiments.jitter import JitterParams
    from workloads.multimodel.experiments.rate_limit import FairnessParams, GlobalCapParams

    assert (CurvesParams().warmup_s, CurvesParams().settle) == (1.0, "two_scrapes")
    assert JitterParams().warmup_s == 1.0
    assert FairnessParams().warmup_s == GlobalCapParams().warmup_s == 1.5
    assert FairnessParams().warm_requests == GlobalCapParams().warm_requests == 20


@pytest.mark.parametrize("model", ["FairnessParams", "GlobalCapParams"])
@pytest.mark.parametrize("bad", [-1, 1001, 2.0, "none"])
def test_bad_warm_requests_are_refused_naming_the_field_and_the_bounds(model, bad) -> None:
    from workloads.multimodel.experiments import rate_limit

    with pytest.raises(ParamsError, match="warm_requests") as err:
        validate(getattr(rate_limit, model), {"warm_requests": bad})
    assert repr(bad) in str(err.value) or str(bad) in str(err.value)


def test_quick_rate_limiter_servers_send_no_warm_up_requests_and_full_ones_the_measured_twenty() -> None:
    """The harness caps a quick run's warm-up at QUICK_WARM_REQUESTS; a runner's note reads the same count."""
    from types import SimpleNamespace

    from workloads.serving.harness import QUICK_WARM_REQUESTS, warm_count

    quick, full = SimpleNamespace(quick=True), SimpleNamespace(quick=False)
    assert warm_count(quick, 20) == QUICK_WARM_REQUESTS < 20  # type: ignore[arg-type]
    assert (warm_count(quick, 0), warm_count(full, 20), warm_count(full, 0)) == (0, 20, 0)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("field", "bad"), [("warmup_s", 0.0), ("warmup_s", 61.0), ("warmup_s", "short"), ("settle", "one_scrape")]
)
def test_a_bad_curves_warmup_or_settle_names_the_field(field, bad) -> None:
    from workloads.multimodel.experiments.curves import CurvesParams

    with pytest.raises(ParamsError, match=field):
        validate(CurvesParams, {field: bad})


@pytest.mark.parametrize("model", ["jitter:JitterParams", "rate_limit:FairnessParams", "rate_limit:GlobalCapParams"])
def test_a_zero_warmup_is_refused_naming_the_field(model) -> None:
    import importlib

    module, name = model.split(":")
    params = getattr(importlib.import_module(f"workloads.multimodel.experiments.{module}"), name)
    with pytest.raises(ParamsError, match="warmup_s"):
        validate(params, {"warmup_s": 0.0})


@pytest.mark.parametrize(
    "model",
    ["curves:CurvesParams", "jitter:JitterParams", "rate_limit:FairnessParams", "rate_limit:GlobalCapParams",
     "priorities:PriorityParams"],
)  # fmt: skip
def test_auto_completion_stays_on_by_default_and_a_non_boolean_is_refused(model) -> None:
    import importlib

    module, name = model.split(":")
    params = getattr(importlib.import_module(f"workloads.multimodel.experiments.{module}"), name)
    assert params().auto_complete_config is True
    with pytest.raises(ParamsError, match="auto_complete_config"):
        validate(params, {"auto_complete_config": "no"})


def test_server_args_add_the_flag_only_when_auto_completion_is_off() -> None:
    from workloads.multimodel.experiments import AUTO_COMPLETE_OFF, server_args

    assert server_args(True, ["--rate-limit=execution_count"]) == ["--rate-limit=execution_count"]
    assert server_args(False, ["--rate-limit=execution_count"]) == ["--rate-limit=execution_count", AUTO_COMPLETE_OFF]


def test_stall_warmup_and_probe_delay_default_to_the_full_runs_one_second() -> None:
    p = PriorityParams()
    assert (p.stall_warmup_s, p.probe_delay_s) == (1.0, 1.0)
    for field in ("stall_warmup_s", "probe_delay_s"):
        with pytest.raises(ParamsError, match=field):
            validate(PriorityParams, {field: 0.0})


def test_the_scrape_interval_defaults_to_the_full_runs_second() -> None:
    from workloads.ensembles.experiments.step_times import StepMetricsParams
    from workloads.multimodel.experiments.curves import CurvesParams

    assert CurvesParams().scrape_interval == StepMetricsParams().scrape_interval == "1s"
    assert validate(CurvesParams, {"scrape_interval": "500ms"}).scrape_interval == "500ms"


@pytest.mark.parametrize("bad", ["0.5s", "500", "50ms", "0s", "2s", 1])
def test_a_bad_scrape_interval_names_the_field_and_what_is_allowed(bad) -> None:
    from workloads.ensembles.experiments.step_times import StepMetricsParams
    from workloads.multimodel.experiments.curves import CurvesParams

    for params in (CurvesParams, StepMetricsParams):
        with pytest.raises(ParamsError, match="scrape_interval") as err:
            validate(params, {"scrape_interval": bad})
        assert repr(bad) in str(err.value)
        assert ("allowed: 500ms, 1s, 5s, 15s, 30s, 1m" if isinstance(bad, str) else "valid string") in str(err.value)


def test_panels_are_evaluated_over_whole_seconds_and_at_least_two_scrapes() -> None:
    """evaluate() against a recording stand-in for Prometheus' query API (the live curves test runs the real one)."""
    from ailab.contract.durations import seconds
    from workloads.multimodel.observe import evaluate

    asked: list[str] = []

    class Prom:
        def query(self, expr: str, at: float | None = None) -> list[dict]:
            asked.append(expr)
            return [{"metric": {"model": "m"}, "value": [at, "2.5"]}]

    q = "rate(x[$__rate_interval])"
    assert evaluate(Prom(), q, 12.4, at=100.0) == {"m": 2.5}  # type: ignore[arg-type]
    evaluate(Prom(), q, 1.3, at=100.0)  # type: ignore[arg-type]
    evaluate(Prom(), q, 1.3, at=100.0, scrape_s=seconds("500ms"))  # type: ignore[arg-type]
    assert asked == ["rate(x[12000ms])", "rate(x[2000ms])", "rate(x[1000ms])"]
    assert (seconds("250ms"), seconds("2s")) == (0.25, 2.0)


def test_every_quick_run_that_asks_for_the_runs_prometheus_can_borrow_it() -> None:
    """A binding's quick_services: [prometheus] buys nothing unless its quick run asks for a Prometheus with exactly
    the options the pool starts one with (a different scrape interval would start a fresh one, 5 s slower)."""
    from ailab.curriculum.loader import load_catalogue
    from ailab.local.pool import PRESTART
    from ailab.runner import resolve_params
    from workloads.multimodel.observe import prometheus_options

    asking = [e for e in load_catalogue().experiments.values() if e.binding and e.binding.quick_services]
    assert {e.id for e in asking} >= {"d18.e4", "d60.e5"}
    for exp in asking:
        typed, _ = resolve_params(exp, quick=True)
        assert prometheus_options(typed.scrape_interval) == PRESTART["prometheus"], exp.id
