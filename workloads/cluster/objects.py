"""Reading Kubernetes objects and events as the API server returns them (plain dicts): pure, no client.

Times are wall-clock seconds (epoch) so that pod conditions, events and the runner's own samples share one axis.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any

GPU = "nvidia.com/gpu"


def ts(value: str | None) -> float | None:
    """RFC 3339 time as the API server writes it ('2026-12-02T01:46:06Z', with or without fractions) -> epoch s."""
    if not value:
        return None
    return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()


@dataclass(frozen=True)
class Event:
    t: float  # when it (last) happened, epoch s
    type: str  # Normal | Warning
    reason: str  # Scheduled, FailedScheduling, SuccessfulRescale, ScalingReplicaSet, Killing, OOMKilling, ...
    kind: str  # of the involved object
    name: str
    message: str
    count: int = 1


def parse_events(items: list[dict[str, Any]]) -> list[Event]:
    """core/v1 Events (the items of `kubectl get events -o json`), oldest first."""
    out = []
    for e in items:
        obj = e.get("involvedObject") or e.get("regarding") or {}
        when = ts(e.get("eventTime")) or ts(e.get("lastTimestamp")) or ts(e.get("firstTimestamp"))
        when = when or ts(e.get("metadata", {}).get("creationTimestamp")) or 0.0
        out.append(
            Event(
                when,
                e.get("type", ""),
                e.get("reason", ""),
                obj.get("kind", ""),
                obj.get("name", ""),
                e.get("message") or e.get("note") or "",
                int(e.get("count") or 1),
            )
        )
    return sorted(out, key=lambda ev: ev.t)


def condition(obj: dict[str, Any], kind: str) -> dict[str, Any] | None:
    """The status condition of type `kind` (Ready, PodScheduled, Available, ...), or None."""
    return next((c for c in (obj.get("status") or {}).get("conditions") or [] if c.get("type") == kind), None)


def pod_ready(pod: dict[str, Any]) -> bool:
    c = condition(pod, "Ready")
    return bool(c and c.get("status") == "True") and not pod["metadata"].get("deletionTimestamp")


def ready_since(pod: dict[str, Any]) -> float | None:
    """When the pod last became Ready (its Ready condition's transition), None when not ready."""
    c = condition(pod, "Ready")
    return ts(c.get("lastTransitionTime")) if c and c.get("status") == "True" else None


def deployment_rolled_out(d: dict[str, Any]) -> bool:
    """All of spec.replicas updated, ready and available, and the controller has seen the latest spec."""
    want = d.get("spec", {}).get("replicas", 1)
    st = d.get("status") or {}
    seen = st.get("observedGeneration", 0) >= d["metadata"].get("generation", 0)
    counts = (st.get("updatedReplicas", 0), st.get("readyReplicas", 0), st.get("availableReplicas", 0))
    return seen and all(c == want for c in counts) and st.get("replicas", 0) == want


# --- QoS and OOM ----------------------------------------------------------------------------------------------


def qos_class(spec: dict[str, Any]) -> str:
    """The QoS class Kubernetes gives a pod spec: Guaranteed, Burstable or BestEffort (cpu and memory only)."""
    containers = spec.get("containers", []) + spec.get("initContainers", [])
    any_set = False
    guaranteed = True
    for c in containers:
        res = c.get("resources") or {}
        req, lim = res.get("requests") or {}, res.get("limits") or {}
        for r in ("cpu", "memory"):
            if r in req or r in lim:
                any_set = True
            # a limit without a request defaults the request to the limit
            if r not in lim or req.get(r, lim[r]) != lim[r]:
                guaranteed = False
    if not any_set:
        return "BestEffort"
    return "Guaranteed" if guaranteed else "Burstable"


@dataclass(frozen=True)
class Termination:
    container: str
    reason: str  # OOMKilled, Error, Completed, ...
    exit_code: int
    at: float | None
    restarts: int


def terminations(pod: dict[str, Any]) -> list[Termination]:
    """Each container's current or last termination (state.terminated, else lastState.terminated)."""
    out = []
    for cs in (pod.get("status") or {}).get("containerStatuses") or []:
        term = (cs.get("state") or {}).get("terminated") or (cs.get("lastState") or {}).get("terminated")
        if term:
            out.append(
                Termination(
                    cs["name"],
                    term.get("reason", ""),
                    int(term.get("exitCode", 0)),
                    ts(term.get("finishedAt")),
                    int(cs.get("restartCount", 0)),
                )
            )
    return out


def oom_killed(pod: dict[str, Any]) -> bool:
    return any(t.reason == "OOMKilled" for t in terminations(pod))


def evicted(pod: dict[str, Any]) -> bool:
    st = pod.get("status") or {}
    return st.get("reason") == "Evicted" or (condition(pod, "DisruptionTarget") or {}).get("reason") in (
        "EvictionByEvictionAPI",
        "TerminationByKubelet",
    )


# --- scheduling -----------------------------------------------------------------------------------------------

_PART = re.compile(r"(\d+) ([^,]+?)(?=, \d+ |$)")


def unschedulable_reasons(message: str) -> dict[str, int]:
    """'0/3 nodes are available: 1 Insufficient nvidia.com/gpu, 2 node(s) had untolerated taint {...}. preemption:
    ...' -> {'Insufficient nvidia.com/gpu': 1, 'node(s) had untolerated taint {...}': 2}."""
    head = message.split(". preemption:")[0].rstrip(".")
    if ": " not in head:
        return {}
    body = head.split(": ", 1)[1]
    return {m.group(2).strip(): int(m.group(1)) for m in _PART.finditer(body)}


@dataclass(frozen=True)
class Placement:
    pod: str
    scheduled: bool
    node: str
    phase: str
    reason: str  # the PodScheduled condition's reason (Unschedulable, SchedulerError) or ""
    why: dict[str, int]  # parsed from the Unschedulable message: reason -> node count
    gpus: int  # nvidia.com/gpu limit of the pod


def placement(pod: dict[str, Any]) -> Placement:
    """Where the scheduler put a pod, or why it could not, from its PodScheduled condition."""
    c = condition(pod, "PodScheduled") or {}
    ok = c.get("status") == "True"
    return Placement(
        pod["metadata"]["name"],
        ok,
        (pod.get("spec") or {}).get("nodeName", "") or "",
        (pod.get("status") or {}).get("phase", ""),
        "" if ok else c.get("reason", ""),
        {} if ok else unschedulable_reasons(c.get("message", "")),
        gpu_limit(pod.get("spec") or {}),
    )


def gpu_limit(spec: dict[str, Any]) -> int:
    return sum(int((c.get("resources") or {}).get("limits", {}).get(GPU, 0)) for c in spec.get("containers", []))


@dataclass(frozen=True)
class NodeGpus:
    name: str
    allocatable: int
    product: str  # nvidia.com/gpu.product (GPU feature discovery), "" without GFD
    taints: tuple[str, ...]  # key=value:effect


def node_gpus(node: dict[str, Any]) -> NodeGpus:
    st, md = node.get("status") or {}, node["metadata"]
    taints = tuple(
        f"{t['key']}{'=' + t['value'] if t.get('value') else ''}:{t['effect']}"
        for t in (node.get("spec") or {}).get("taints") or []
    )
    return NodeGpus(
        md["name"],
        int((st.get("allocatable") or {}).get(GPU, 0)),
        (md.get("labels") or {}).get("nvidia.com/gpu.product", ""),
        taints,
    )
