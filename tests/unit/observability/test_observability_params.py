"""The observability bindings load with their typed parameters, and a bad value names the field."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from ailab.curriculum import catalogue
from workloads.observability.experiments import alert_routes, gpu_exporter_load, scrape_cost


def test_every_observability_experiment_is_bound_to_a_runner_of_the_area() -> None:
    cat = catalogue()
    ids = [f"d06.e{i}" for i in range(1, 6)] + [f"d13.e{i}" for i in range(1, 6)] + ["d14.e3"]
    ids += [f"d46.e{i}" for i in range(1, 6)]
    for exp in ids:
        assert cat.experiments[exp].runner.startswith("workloads.observability.experiments."), exp


@pytest.mark.parametrize(
    "model, values, field",
    [
        (scrape_cost.ScrapeCostParams, {"intervals": ["1m"]}, "intervals"),
        (scrape_cost.ScrapeCostParams, {"intervals": []}, "intervals"),
        (alert_routes.AlertChainParams, {"threshold_factor": 1.0}, "threshold_factor"),
        (alert_routes.AlertChainParams, {"alert_for": "soon"}, "alert_for"),
        (gpu_exporter_load.TemperatureAlertParams, {"drill_margin_c": 0}, "drill_margin_c"),
        (gpu_exporter_load.InferenceLoadParams, {"batchsize": 8}, "batchsize"),
    ],
)
def test_bad_values_name_the_field(model: type, values: dict, field: str) -> None:
    with pytest.raises(ValidationError) as exc:
        model(**values)
    assert field in str(exc.value)
