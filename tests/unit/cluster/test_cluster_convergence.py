"""Convergence (Argo CD sync, operator throughput) and StatefulSet ordering on recorded status samples and events."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from workloads.cluster import convergence, ordering
from workloads.cluster.objects import parse_events

FIX = Path(__file__).with_name("fixtures")


def test_time_to_synced_and_healthy_at_the_pushed_revision() -> None:
    samples = [tuple(s) for s in json.loads((FIX / "argo_application_samples.json").read_text())]
    push = 1796218001.0
    assert convergence.first_true(samples, push, lambda st: convergence.argo_synced(st, "e4f5a6b")) == 7.0
    # synced at the revision (health aside) happens earlier
    assert convergence.first_true(samples, push, lambda st: st["sync"]["revision"] == "e4f5a6b") == 3.0
    assert convergence.first_true(samples, push, lambda st: convergence.argo_synced(st, "zzz")) is None


def test_operator_throughput_from_create_and_done_times() -> None:
    created = {f"r{i}": 100.0 + 0.1 * i for i in range(10)}
    done = {f"r{i}": 101.0 + 0.2 * i for i in range(9)}  # r9 never reconciled
    tp = convergence.throughput(created, done)
    assert (tp.objects, tp.done) == (10, 9)
    assert tp.p50_s == pytest.approx(1.4) and tp.p99_s == pytest.approx(1.8)
    assert tp.per_s == pytest.approx(9 / 2.6)
    assert convergence.throughput({"a": 1.0}, {}).done == 0


def test_statefulset_update_deletes_highest_ordinal_first() -> None:
    events = parse_events(json.loads((FIX / "statefulset_events.json").read_text())["items"])
    order = ordering.deletion_order(events, "mysql")
    assert order == ["mysql-2", "mysql-1", "mysql-0"]
    assert ordering.monotonic(order, descending=True) and not ordering.monotonic(order)
    assert ordering.ordinal("web-12") == 12
    with pytest.raises(ValueError, match="no StatefulSet ordinal"):
        ordering.ordinal("triton-stable-6d4cf56db6-zz7tm")


def test_creation_order_by_timestamp() -> None:
    pods = [
        {"metadata": {"name": n, "creationTimestamp": t}}
        for n, t in [("mysql-3", "2026-12-02T14:00:09Z"), ("mysql-2", "2026-12-02T14:00:02Z")]
    ]
    assert ordering.creation_order(pods) == ["mysql-2", "mysql-3"]
