"""Pods the cluster experiments create, built from the week stack's own GPU smoke-test Job (same image, security
context, tolerations, runtime class), so what runs is what the stack runs."""

from __future__ import annotations

import copy
from typing import Any

from workloads.cluster.objects import GPU, condition
from workloads.cluster.stack import StackView

RESTRICTED = {
    "runAsNonRoot": True,
    "runAsUser": 1000,
    "runAsGroup": 1000,
    "allowPrivilegeEscalation": False,
    "readOnlyRootFilesystem": True,
    "capabilities": {"drop": ["ALL"]},
    "seccompProfile": {"type": "RuntimeDefault"},
}


def gpu_pod(
    view: StackView,
    name: str,
    gpus: int,
    command: list[str],
    tolerate: bool = True,
    cpu: str = "100m",
    memory: str = "128Mi",
    labels: dict[str, str] | None = None,
) -> dict[str, Any]:
    """A Pod from the stack's gpu-smoke-test Job template asking for `gpus` GPUs (0: a CPU pod, same image)."""
    spec = copy.deepcopy(view.one("Job", "gpu-smoke-test")["spec"]["template"]["spec"])
    c = spec["containers"][0]
    c["command"] = command
    res = {"cpu": cpu, "memory": memory, **({GPU: str(gpus)} if gpus else {})}
    c["resources"] = {"requests": dict(res), "limits": dict(res)}
    if not tolerate:
        spec.pop("tolerations", None)
    if not gpus:
        spec.pop("runtimeClassName", None)
    spec["restartPolicy"] = "Never"
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "labels": {"app": "ailab-experiment", **(labels or {})}},
        "spec": spec,
    }


def python_pod(image: str, name: str, code: str, resources: dict[str, Any], labels: dict | None = None) -> dict:
    """A Pod running `python3 -c code` in the lab's inference image (restricted security context)."""
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "labels": {"app": "ailab-experiment", **(labels or {})}},
        "spec": {
            "restartPolicy": "Never",
            "automountServiceAccountToken": False,
            "containers": [
                {
                    "name": "main",
                    "image": image,
                    "command": ["python3", "-c", code],
                    "resources": resources,
                    "securityContext": RESTRICTED,
                }
            ],
        },
    }


def settled(pod: dict[str, Any] | None) -> dict[str, Any] | None:
    """The pod once it has finished, or the scheduler has said it cannot place it; None while undecided."""
    if pod is None:
        return None
    phase = (pod.get("status") or {}).get("phase")
    sched = condition(pod, "PodScheduled") or {}
    if phase in ("Succeeded", "Failed") or (sched.get("status") == "False" and sched.get("reason") == "Unschedulable"):
        return pod
    return None


def placed(pod: dict[str, Any] | None) -> dict[str, Any] | None:
    """The pod once it is scheduled (or known unschedulable); None while the scheduler has not decided."""
    if pod is None:
        return None
    c = condition(pod, "PodScheduled") or {}
    return pod if c.get("status") == "True" or c.get("reason") == "Unschedulable" else None


def triton_copy(view: StackView, name: str, labels: dict[str, str], namespace: str | None = None) -> dict[str, Any]:
    """A one-replica copy of the stack's triton-stable Deployment under `name`, selected by `labels` (which must
    include a unique `app`), for a namespace of the run's: same image, args, probes, resources, security context;
    no service account of the stack's namespace (it would not exist there) and no API token."""
    d = copy.deepcopy(view.one("Deployment", "triton-stable"))
    d["metadata"] = {"name": name, **({"namespace": namespace} if namespace else {})}
    d["spec"]["replicas"] = 1
    d["spec"]["selector"] = {"matchLabels": {k: v for k, v in labels.items() if k in ("app", "tenant")}}
    d["spec"]["template"]["metadata"] = {"labels": labels}
    pod = d["spec"]["template"]["spec"]
    pod.pop("serviceAccountName", None)
    pod["automountServiceAccountToken"] = False
    return d
