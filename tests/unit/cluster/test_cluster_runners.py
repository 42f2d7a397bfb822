"""Runners end to end against a fake API server that replays recorded object states.

The Kubernetes API server is the only thing faked (cluster_fakeapi.FakeApi; none can run here): the week's stack
is really rendered (`lab render`), the runner's manifests are really built, applied, waited on and cleaned up, and
the analysis runs on the recorded pod states, events, nodes and logs. What is checked: the tables the runner
records, that a node it tainted is put back, and that its namespace is deleted also when the run fails.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest
from cluster_fakeapi import FakeApi

from ailab.contract import Context, facts
from workloads.cluster.experiments import scheduling
from workloads.cluster.kube import Found
from workloads.cluster.objects import ts
from workloads.cluster.stack import StackView, render

FIX = Path(__file__).with_name("fixtures")
NODES = json.loads((FIX / "nodes.json").read_text())["items"]
STACK_NS = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "ailab"}}
SCHEDULED = {"type": "PodScheduled", "status": "True", "lastTransitionTime": "2026-12-02T11:00:01Z"}


def running_on(node: str) -> dict:
    return {"spec": {"nodeName": node}, "status": {"phase": "Running", "conditions": [SCHEDULED]}}


UNSCHEDULABLE = {
    "status": {
        "phase": "Pending",
        "conditions": [
            {
                "type": "PodScheduled",
                "status": "False",
                "reason": "Unschedulable",
                "message": "0/3 nodes are available: "
                "1 node(s) had untolerated taint {node-role.kubernetes.io/control-plane: }, "
                "2 node(s) had untolerated taint {nvidia.com/gpu: present}. preemption: 0/3 nodes are available: "
                "3 Preemption is not helpful for scheduling.",
            }
        ],
    }
}


@pytest.fixture(scope="module")
def week01(tmp_path_factory: pytest.TempPathFactory) -> StackView:
    """Week 1's stack, rendered once by `lab render` for the module (a few seconds on a loaded host)."""
    return StackView.from_dir(1, render(1, tmp_path_factory.mktemp("week01")))


@pytest.fixture
def api(monkeypatch: pytest.MonkeyPatch, week01: StackView) -> FakeApi:
    monkeypatch.setattr("workloads.cluster.run.StackView.load", lambda week, workdir: week01)
    fake = FakeApi([STACK_NS, *NODES])
    monkeypatch.setattr(
        "workloads.cluster.session.connect",
        lambda **_: Found(fake, "recorded (fake API server)", "https://fake:6443", "v1.31.4"),
    )
    return fake


def ctx(tmp_path: Path, exp: str) -> Context:
    return Context(experiment_id=exp, device="cpu", quick=False, workdir=tmp_path, log=lambda _: None)


def own_namespace(api: FakeApi) -> str:
    return next(w.split(" ", 1)[1] for op, w in api.calls if op == "apply" and w.startswith("Namespace ailab-x-"))


def test_gpu_pod_records_placement_gpus_and_events_and_leaves_nothing(api: FakeApi, tmp_path: Path) -> None:
    api.script(
        "Pod",
        "gpu-pod",
        [
            {"status": {"phase": "Pending", "conditions": [SCHEDULED]}},
            {"spec": {"nodeName": "ailab-worker"}, "status": {"phase": "Succeeded", "conditions": [SCHEDULED]}},
        ],
    )
    api.logs_by_pod["gpu-pod"] = "GPU 0: NVIDIA H100 80GB HBM3 (UUID: GPU-2f3e9c1a-5b7d-4e2f-9a1c-0d8e7f6a5b4c)\n"
    api.listed["Event"] = [
        {
            "involvedObject": {"kind": "Pod", "name": "gpu-pod"},
            "reason": "Scheduled",
            "type": "Normal",
            "message": "Successfully assigned ailab-x/gpu-pod to ailab-worker",
            "eventTime": "2026-12-02T11:00:01.1Z",
        },
        {
            "involvedObject": {"kind": "Pod", "name": "gpu-pod"},
            "reason": "Started",
            "type": "Normal",
            "message": "Started container nvidia-smi",
            "lastTimestamp": "2026-12-02T11:00:02Z",
        },
    ]
    out = scheduling.gpu_pod(ctx(tmp_path, "d02.e1"), scheduling.GpuPodParams(timeout_s=5))
    tables = {t.name: t for t in out.tables}
    assert tables["placement"].rows == [["request 1 GPU", 1, True, "ailab-worker", "Succeeded", "-"]]
    assert tables["gpus_seen"].rows[0][0].startswith("GPU 0: NVIDIA H100")
    assert [r[2] for r in tables["events"].rows] == ["Scheduled", "Started"]
    assert [r[:2] for r in tables["gpu_nodes"].rows] == [["ailab-worker", 4], ["ailab-worker2", 1]]
    assert out.notes == ["usable: True (1 GPU(s) listed for 1 requested)"]
    # the pod was built from the stack's smoke-test Job: its image and GPU limit, the run's labels
    pod = next(m for m in api.applied if m["kind"] == "Pod")
    c = pod["spec"]["containers"][0]
    assert c["image"] == facts.images().pinned("cuda-base") and c["command"] == ["nvidia-smi", "-L"]
    assert c["resources"]["limits"]["nvidia.com/gpu"] == "1" == c["resources"]["requests"]["nvidia.com/gpu"]
    assert pod["metadata"]["labels"]["lab.ailab.dev/experiment"] == "d02.e1"
    ns = own_namespace(api)
    assert api.get("v1", "Namespace", ns) is None and api.get("v1", "Pod", "gpu-pod", ns) is None


def test_the_namespace_is_deleted_when_the_pod_never_settles(api: FakeApi, tmp_path: Path) -> None:
    api.script("Pod", "gpu-pod", [{"status": {"phase": "Pending", "conditions": [SCHEDULED]}}])
    with pytest.raises(TimeoutError, match=r"pod gpu-pod finished: not within 0\.5 s"):
        scheduling.gpu_pod(ctx(tmp_path, "d02.e1"), scheduling.GpuPodParams(timeout_s=0.5))
    ns = own_namespace(api)
    assert ("delete", f"Namespace {ns}") in api.calls and api.get("v1", "Namespace", ns) is None


def test_taints_checks_each_case_and_puts_the_nodes_back(api: FakeApi, tmp_path: Path) -> None:
    api.script("Pod", "gpu-tolerates", [running_on("ailab-worker")])
    api.script("Pod", "gpu-no-toleration", [UNSCHEDULABLE])
    api.script(
        "Pod",
        "cpu-no-toleration",
        [{"status": {"phase": "Pending", "conditions": [{**UNSCHEDULABLE["status"]["conditions"][0]}]}}],
    )
    seen_taints = {}
    real_patch = api.patch

    def patch(*a, **kw):  # record the taints the runner set while it ran
        out = real_patch(*a, **kw)
        if a[1] == "Node":
            seen_taints.setdefault(a[2], out["spec"].get("taints"))  # the first patch: the runner's
        return out

    api.patch = patch
    out = scheduling.taints(ctx(tmp_path, "d02.e4"), scheduling.TaintParams(timeout_s=5))
    checks = {r[0]: r[2] for r in {t.name: t for t in out.tables}["checks"].rows}
    assert checks == {"gpu-tolerates": "PASS", "gpu-no-toleration": "PASS", "cpu-no-toleration": "PASS"}
    placement = {r[0]: r for r in {t.name: t for t in out.tables}["placement"].rows}
    assert "untolerated taint {nvidia.com/gpu: present} (2 nodes)" in placement["gpu-no-toleration"][5]
    # only the untainted GPU node got the taint, and it is gone again afterwards
    assert seen_taints["ailab-worker2"] == [{"key": "nvidia.com/gpu", "value": "present", "effect": "NoSchedule"}]
    assert "taints" not in api.get("v1", "Node", "ailab-worker2")["spec"]
    assert api.get("v1", "Node", "ailab-worker")["spec"]["taints"] == NODES[1]["spec"]["taints"]


def invalid(message: str) -> Exception:
    """What the dynamic client raises when the API server answers 422 Invalid (a Status object as the body)."""
    from kubernetes.client import ApiException
    from kubernetes.dynamic.exceptions import api_exception

    e = ApiException(status=422, reason="Unprocessable Entity")
    e.body = json.dumps({"kind": "Status", "status": "Failure", "message": message, "reason": "Invalid", "code": 422})
    e.headers = {"Content-Type": "application/json"}
    return api_exception(e)


def test_oom_by_qos_records_the_refused_spec_and_the_oom_kill(api: FakeApi, tmp_path: Path) -> None:
    from workloads.cluster.experiments import qos

    api.reject["req-1gi-lim-512mi"] = invalid(
        'Pod "req-1gi-lim-512mi" is invalid: spec.containers[0].resources.requests: Invalid value: "1Gi": '
        "must be less than or equal to memory limit of 512Mi"
    )
    killed = next(
        p
        for p in json.loads((FIX / "pods_memory.json").read_text())["items"]
        if p["metadata"]["name"] == "req-512mi-lim-1gi"
    )
    api.script(
        "Pod",
        "req-512mi-lim-1gi",
        [{"status": {"phase": "Running", "qosClass": "Burstable"}}, {"status": killed["status"]}],
    )
    api.logs_by_pod["req-512mi-lim-1gi"] = "".join(f"allocated_mib {64 * i}\n" for i in range(1, 16))
    out = qos.oom_by_qos(ctx(tmp_path, "d02.e2"), qos.OomParams(hold_s=0, timeout_s=10))
    rows = {r[0]: r for r in out.tables[0].rows}
    refused = rows["req-1gi-lim-512mi"]
    assert refused[3] is False and "must be less than or equal to memory limit" in refused[-1]
    oom = rows["req-512mi-lim-1gi"]
    assert oom[3:10] == [True, "Burstable", "Burstable", True, False, 137, 960]
    assert api.get("v1", "Namespace", own_namespace(api)) is None


def test_statefulset_update_reads_the_replacement_order_from_the_controller_s_events(
    api: FakeApi, tmp_path: Path
) -> None:
    from workloads.cluster.experiments import stateful

    events = json.loads((FIX / "statefulset_events.json").read_text())["items"]
    shift = ts("2099-01-01T00:00:00Z") - ts("2026-12-02T14:00:00Z")  # replay the recorded drill after "now"
    for e in events:
        when = datetime.fromtimestamp(ts(e["lastTimestamp"]) + shift, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        e["lastTimestamp"] = e["firstTimestamp"] = when
    api.listed["Event"] = events
    ready = {"type": "Ready", "status": "True", "lastTransitionTime": "2099-01-01T00:00:30Z"}
    api.listed["Pod"] = [
        {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": f"mysql-{i}", "creationTimestamp": f"2099-01-01T00:00:1{2 - i}Z"},
            "status": {"phase": "Running", "conditions": [ready]},
        }
        for i in range(3)
    ]
    api.script(
        "StatefulSet",
        "mysql",
        [
            {
                "status": {
                    "replicas": 3,
                    "updatedReplicas": 1,
                    "currentRevision": "mysql-7b9",
                    "updateRevision": "mysql-5c4",
                }
            },
            {
                "status": {
                    "replicas": 3,
                    "updatedReplicas": 3,
                    "currentRevision": "mysql-5c4",
                    "updateRevision": "mysql-5c4",
                }
            },
        ],
    )
    out = stateful.statefulset_update(ctx(tmp_path, "d41.e4"), stateful.StatefulParams(replicas=3, timeout_s=10))
    (row,) = out.tables[0].rows
    assert row[:3] == ["mysql-2, mysql-1, mysql-0", "mysql-2, mysql-1, mysql-0", "PASS"]
    sts = next(m for m in api.applied if m["kind"] == "StatefulSet")
    assert sts["spec"]["volumeClaimTemplates"][0]["spec"]["resources"]["requests"]["storage"] == "1Gi"
    assert api.get("v1", "Namespace", own_namespace(api)) is None
