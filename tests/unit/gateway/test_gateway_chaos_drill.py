"""d28.e3's recovery arithmetic (workloads/serving/experiments/chaos.py) on hand-made request logs, and its
parameters refused naming the field. The live drill is `lab run d28.e3` (real Redis, HAProxy, tritonserver)."""

import math

import pytest
from pydantic import ValidationError

from workloads.serving.caching import Entry
from workloads.serving.experiments.chaos import FaultDrillParams, segment_report


def _log() -> list[Entry]:
    out = []
    for i in range(100):  # 10 requests/s for 10 s; fault at 2 s, failures 2.0-3.0 s, slow answers to 4.0 s
        t = i / 10
        if 2.0 <= t < 3.0:
            out.append(Entry(t, t + 0.001, "miss", "connection"))
        elif 3.0 <= t < 4.0:
            out.append(Entry(t, t + 0.5, "miss"))
        else:
            out.append(Entry(t, t + 0.01, "hit" if i % 2 else "miss"))
    return out


def test_segment_counts_failures_first_success_and_p99_back_within_bound():
    r = segment_report(_log(), 2.0, 10.0, bound_ms=20.0, bin_s=0.5, model_path_only=True)
    assert r["requests"] == 80 and r["failed"] == 10 and r["kinds"] == "connection 10"
    assert math.isclose(r["first_success_s"], 1.0 + 0.5)  # sent at 3.0 s (after the last failure), took 0.5 s
    assert math.isclose(r["p99_back_s"], 2.5)  # first clean window within 20 ms: [4.0, 4.5)


def test_cache_hits_do_not_count_as_the_models_recovery():
    log = [Entry(0.0, 0.1, "miss", "server"), Entry(0.2, 0.201, "hit"), Entry(0.5, 0.51, "miss")]
    assert math.isclose(segment_report(log, 0.0, 1.0, 50, 0.5, model_path_only=True)["first_success_s"], 0.51)
    assert math.isclose(segment_report(log, 0.0, 1.0, 50, 0.5, model_path_only=False)["first_success_s"], 0.201)


def test_no_recovery_is_nan_not_zero():
    log = [Entry(0.1 * i, 0.1 * i + 0.001, "miss", "server") for i in range(10)]
    r = segment_report(log, 0.0, 1.0, 50, 0.5, model_path_only=True)
    assert math.isnan(r["first_success_s"]) and math.isnan(r["p99_back_s"])


@pytest.mark.parametrize(
    ("field", "kw"),
    [
        ("faults", {"faults": ["redis", "disk"]}),
        ("faults", {"faults": []}),
        ("redis_down_s", {"redis_down_s": 12.0, "fault_every_s": 10.0}),
        ("unload_s", {"unload_s": 10.0, "fault_every_s": 10.0}),
        ("backoff_max_s", {"backoff_s": 1.0, "backoff_max_s": 0.5}),
        ("concurrency", {"concurrency": 0}),
    ],
)
def test_bad_parameters_are_refused_naming_the_field(field, kw):
    with pytest.raises(ValidationError, match=field):
        FaultDrillParams(**kw)
