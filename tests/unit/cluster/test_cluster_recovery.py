"""Recovery after deleting pods, from recorded pod objects and sampled ready counts; latency windows of a
load-generator timeline."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from workloads.cluster import recovery, timeline
from workloads.cluster.objects import ts

PODS = json.loads(Path(__file__).with_name("fixtures").joinpath("chaos_pods_after.json").read_text())["items"]
DELETED_AT = ts("2026-12-02T13:00:10Z")


def test_replacement_of_a_deployment_pod_is_the_newer_pod_with_its_ready_time() -> None:
    triton = [p for p in PODS if p["metadata"]["labels"]["app"] == "triton"]
    r = recovery.replacement(triton, "triton-stable-6d4cf56db6-abcde", DELETED_AT)
    assert r.replacement == "triton-stable-6d4cf56db6-zz7tm"
    assert r.created_after_s == pytest.approx(0.6) and r.ready_after_s == pytest.approx(21.0)


def test_a_statefulset_pod_comes_back_under_its_name_and_is_not_ready_yet() -> None:
    r = recovery.replacement(PODS, "mysql-1", DELETED_AT)
    assert (r.replacement, r.created_after_s, r.ready_after_s) == ("mysql-1", pytest.approx(2.0), None)
    assert recovery.replacement(PODS, "x", DELETED_AT + 3600).replacement is None


def test_back_to_full_after_the_last_dip() -> None:
    samples = [(0, 3), (1, 3), (2, 2), (3, 2), (4, 3), (5, 2), (6, 3), (7, 3)]
    assert recovery.back_to_full(samples, 1, 3) == 5  # the second dip ends at t=6
    assert recovery.back_to_full([(0, 3), (1, 3)], 0, 3) == 0.0
    assert recovery.back_to_full([(0, 3), (1, 2)], 0, 3) is None
    assert recovery.lowest(samples, 1) == 2 and recovery.lowest(samples, 10) is None


ROWS = [
    (0.1, 10.0, ""),
    (0.5, 30.0, ""),
    (1.2, 12.0, ""),
    (1.7, 0.0, "connection"),
    (2.4, 500.0, ""),
    (2.5, 11.0, ""),
    (3.9, 13.0, ""),
]


def test_windows_give_nearest_rank_percentiles_errors_and_ok_rate() -> None:
    w = timeline.windows(ROWS, 1.0)
    assert [x.requests for x in w] == [2, 2, 2, 1]
    assert [x.errors for x in w] == [0, 1, 0, 0]
    assert w[0].p50_ms == 10.0 and w[0].p99_ms == 30.0 and w[2].p99_ms == 500.0
    assert w[1].ok_rps == 1.0
    assert math.isnan(timeline.windows([], 1.0, 0.5)[0].p99_ms)
    with pytest.raises(ValueError, match="width_s"):
        timeline.windows(ROWS, 0)


def test_error_span_and_drift() -> None:
    assert timeline.error_span(ROWS) == (1.7, 1.7) and timeline.error_span(ROWS, 2.0) is None
    flat = [timeline.Window(i, 10, 0, 5.0, 10.0, 10.0) for i in range(8)]
    rising = [timeline.Window(i, 10, 0, 5.0, 10.0 + 10 * (i >= 6), 10.0) for i in range(8)]
    assert timeline.drift(flat) == 1.0 and timeline.drift(rising) == 2.0
    assert math.isnan(timeline.drift(flat[:3]))
