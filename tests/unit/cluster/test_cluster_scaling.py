"""Scale-out analysis on a recorded HPA scale-out/scale-in (events as the API server returned them) and on
sampled replica counts."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from workloads.cluster import scaling
from workloads.cluster.objects import parse_events, ts

EVENTS = parse_events(
    json.loads(Path(__file__).with_name("fixtures").joinpath("hpa_scaleout_events.json").read_text())["items"]
)


def test_rescales_of_one_hpa_with_their_reasons() -> None:
    r = scaling.rescales(EVENTS, "triton")
    assert [x.replicas for x in r] == [2, 4, 1]
    assert r[1].reason == "pods metric triton_queue_time_us_per_request above target"
    assert [x.replicas for x in scaling.rescales(EVENTS)] == [2, 3, 4, 1]  # all HPAs: redis's too


def test_deployment_scalings_from_both_message_forms() -> None:
    r = scaling.replica_set_scalings(EVENTS, "triton-stable")
    assert [x.replicas for x in r] == [2, 4, 1]
    old = parse_events(
        [
            {
                "involvedObject": {"kind": "Deployment", "name": "d"},
                "reason": "ScalingReplicaSet",
                "message": "Scaled up replica set d-5f9 to 3",
                "lastTimestamp": "2026-12-02T10:00:00Z",
            }
        ]
    )
    assert scaling.replica_set_scalings(old, "d")[0].replicas == 3


def test_time_to_scale_and_summary_of_the_recorded_scale_out() -> None:
    load_start = ts("2026-12-02T10:00:00Z")
    pts = [(load_start - 5, 1)] + [(x.t, x.replicas) for x in scaling.rescales(EVENTS, "triton")]
    sm = scaling.summarize(pts, load_start, needed=3)
    assert (sm.start_replicas, sm.peak_replicas, sm.end_replicas, sm.changes) == (1, 4, 1, 3)
    assert sm.first_scale_s == pytest.approx(31.0) and sm.peak_reached_s == pytest.approx(76.0)
    assert sm.flaps == 1 and sm.overshoot == 1
    assert scaling.time_to_settle(pts, load_start, 1) == pytest.approx(380.0)
    assert scaling.time_to_reach(pts, load_start, 5) is None


def test_sampled_counts_become_change_points_and_flaps_count_reversals() -> None:
    samples = [(0, 1), (1, 1), (2, 2), (3, 2), (4, 3), (5, 2), (6, 3), (7, 3), (8, 1)]
    pts = scaling.steps(samples)
    assert pts == [(0, 1), (2, 2), (4, 3), (5, 2), (6, 3), (8, 1)]
    assert scaling.flaps(pts) == 3
    assert scaling.flaps([(0, 1), (1, 2), (2, 4)]) == 0
    with pytest.raises(ValueError, match="no replica samples"):
        scaling.summarize([], 0.0)
