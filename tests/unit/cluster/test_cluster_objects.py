"""Reading Kubernetes objects and events as the API server returns them: recorded JSON in, facts out."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from workloads.cluster.objects import (
    deployment_rolled_out,
    evicted,
    node_gpus,
    oom_killed,
    parse_events,
    placement,
    qos_class,
    terminations,
    ts,
    unschedulable_reasons,
)

FIX = Path(__file__).with_name("fixtures")


def items(name: str) -> list[dict]:
    data = json.loads((FIX / name).read_text())
    return data["items"] if isinstance(data, dict) else data


def by_name(name: str, pod: str) -> dict:
    return next(p for p in items(name) if p["metadata"]["name"] == pod)


def test_times_parse_with_and_without_fractions() -> None:
    assert ts("2026-12-02T10:00:31Z") + 0.5 == ts("2026-12-02T10:00:31.5Z")
    assert ts(None) is None and ts("") is None


def test_events_are_ordered_and_take_event_time_when_timestamps_are_null() -> None:
    evs = parse_events(items("hpa_scaleout_events.json"))
    assert [e.t for e in evs] == sorted(e.t for e in evs)
    sched = next(e for e in evs if e.reason == "FailedScheduling")
    assert sched.t == ts("2026-12-02T10:01:17.412345Z") and sched.type == "Warning" and sched.count == 1
    assert sched.kind == "Pod" and sched.name.startswith("triton-stable-")


def test_unschedulable_message_is_split_into_reasons_and_node_counts() -> None:
    msg = parse_events(items("hpa_scaleout_events.json"))[-3].message
    assert "preemption" in msg
    assert unschedulable_reasons(msg) == {
        "Insufficient nvidia.com/gpu": 1,
        "node(s) had untolerated taint {node-role.kubernetes.io/control-plane: }": 2,
    }
    assert unschedulable_reasons("no colon here") == {}


def test_placement_of_a_pending_and_a_finished_gpu_pod() -> None:
    pending = placement(by_name("pods_scheduling.json", "gpu-4"))
    assert (pending.scheduled, pending.node, pending.reason, pending.gpus) == (False, "", "Unschedulable", 4)
    assert pending.why["Insufficient nvidia.com/gpu"] == 2
    done = placement(by_name("pods_scheduling.json", "gpu-1"))
    assert (done.scheduled, done.node, done.phase, done.why, done.gpus) == (True, "ailab-worker", "Succeeded", {}, 1)


@pytest.mark.parametrize(
    "fixture,pod",
    [
        ("pods_memory.json", "req-512mi-lim-1gi"),
        ("pods_memory.json", "restarted"),
        ("pods_memory.json", "evicted"),
        ("pods_scheduling.json", "gpu-1"),
    ],
)
def test_qos_rule_matches_what_the_api_server_assigned(fixture: str, pod: str) -> None:
    p = by_name(fixture, pod)
    assert qos_class(p["spec"]) == p["status"]["qosClass"]


def test_qos_of_requests_above_limits_and_of_partial_resources() -> None:
    spec = {"containers": [{"resources": {"requests": {"memory": "1Gi"}, "limits": {"memory": "512Mi"}}}]}
    assert qos_class(spec) == "Burstable"
    assert qos_class({"containers": [{"resources": {"limits": {"cpu": "1"}}}]}) == "Burstable"


def test_oom_kill_is_found_in_the_current_and_in_the_last_state() -> None:
    now = by_name("pods_memory.json", "req-512mi-lim-1gi")
    assert oom_killed(now) and terminations(now)[0].exit_code == 137 and not evicted(now)
    restarted = by_name("pods_memory.json", "restarted")
    (t,) = terminations(restarted)
    assert (t.container, t.reason, t.restarts) == ("main", "OOMKilled", 2)
    ev = by_name("pods_memory.json", "evicted")
    assert evicted(ev) and not oom_killed(ev)
    assert not oom_killed(by_name("pods_scheduling.json", "gpu-1"))


def test_node_gpus_taints_and_products() -> None:
    nodes = [node_gpus(n) for n in items("nodes.json")]
    assert [(n.name, n.allocatable) for n in nodes] == [
        ("ailab-control-plane", 0),
        ("ailab-worker", 4),
        ("ailab-worker2", 1),
    ]
    assert nodes[1].taints == ("nvidia.com/gpu=present:NoSchedule",)
    assert nodes[0].taints == ("node-role.kubernetes.io/control-plane:NoSchedule",)
    assert nodes[1].product == "NVIDIA-H100-80GB-HBM3"


def test_a_rollout_is_done_only_when_every_count_matches_and_the_generation_was_seen() -> None:
    d = {
        "metadata": {"generation": 3},
        "spec": {"replicas": 2},
        "status": {
            "observedGeneration": 3,
            "replicas": 2,
            "updatedReplicas": 2,
            "readyReplicas": 2,
            "availableReplicas": 2,
        },
    }
    assert deployment_rolled_out(d)
    assert not deployment_rolled_out({**d, "status": {**d["status"], "observedGeneration": 2}})
    assert not deployment_rolled_out({**d, "status": {**d["status"], "replicas": 3}})  # an old pod still there
    assert not deployment_rolled_out({**d, "status": {**d["status"], "readyReplicas": 1}})
