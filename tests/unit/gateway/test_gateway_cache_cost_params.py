"""Parameters of the cache (d16) and cost (d14.e4) runners: bad input refused naming the field, before anything
starts; the price table carries a source and a date for every price."""

import pytest
from pydantic import ValidationError

from workloads.gateway.experiments.cost import CostParams
from workloads.gateway.experiments.redis_cache import (
    ConcurrencyParams,
    HitRateParams,
    SetupParams,
    TTLParams,
    UpdateParams,
)


@pytest.mark.parametrize(
    ("model", "kw", "field"),
    [
        (HitRateParams, {"hit_ratios": [0.5, 1.5]}, "hit_ratios"),
        (HitRateParams, {"hit_ratios": []}, "hit_ratios"),
        (TTLParams, {"ttls_s": [0.0]}, "ttls_s"),
        (TTLParams, {"qps": -1.0}, "qps"),
        (ConcurrencyParams, {"concurrencies": [6000]}, "concurrencies"),
        (ConcurrencyParams, {"redis_connections": -1}, "redis_connections"),
        (SetupParams, {"requests": 5}, "requests"),
        (UpdateParams, {"ttl_s": 0.5}, "ttl_s"),
        (SetupParams, {"pool_size": True}, "pool_size"),  # strict: a YAML true is not 1
        (CostParams, {"prices": [{"name": "x", "usd_per_hour": 1.0, "vcpus": 2, "source": "s"}]}, "date"),
        (
            CostParams,
            {"prices": [{"name": "x", "usd_per_hour": 1.0, "vcpus": 2, "source": "", "date": "2026-01-01"}]},
            "source",
        ),
        (
            CostParams,
            {"prices": [{"name": "x", "usd_per_hour": 1.0, "vcpus": 2, "source": "s", "date": "June"}]},
            "date",
        ),
        (CostParams, {"configs": [{"name": "a", "instances": 0}]}, "instances"),
        (CostParams, {"configs": [{"name": "a", "gpus": 1}]}, "gpus"),
        (CostParams, {"target_qps": 0.0}, "target_qps"),
    ],
)
def test_bad_parameters_are_refused_naming_the_field(model, kw, field):
    with pytest.raises(ValidationError, match=field):
        model(**kw)


def test_every_default_price_has_a_source_and_a_date():
    for price in CostParams().prices:
        assert price.source.strip() and price.date[:4].isdigit() and price.usd_per_hour > 0
