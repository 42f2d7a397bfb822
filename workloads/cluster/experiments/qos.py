"""Memory limits and QoS: pods that allocate past their memory limit, one per requests/limits case. Records whether
the API server accepts the spec, the QoS class Kubernetes gives it (checked against the rule), whether the kernel
OOM-killed the container or the kubelet evicted the pod, and how much it had allocated when it died."""

from __future__ import annotations

import json
import re
from typing import Any

from pydantic import Field

from ailab.contract import Context, Output, Params, Table
from workloads.cluster import pods
from workloads.cluster.objects import evicted, oom_killed, qos_class, terminations
from workloads.cluster.run import on_stack
from workloads.cluster.session import ClusterParams

ALLOC = """
import sys, time
step, total, blocks = 64 << 20, {mib} << 20, []
while sum(map(len, blocks)) < total:
    blocks.append(bytearray(step)); print("allocated_mib", sum(map(len, blocks)) >> 20, flush=True); time.sleep(0.2)
time.sleep({hold})
"""


class MemoryCase(Params):
    name: str = Field(pattern=r"^[a-z0-9-]{1,40}$")
    request: str = Field(pattern=r"^\d+(Mi|Gi)$", description="memory request, e.g. 512Mi")
    limit: str = Field(pattern=r"^\d+(Mi|Gi)$", description="memory limit, e.g. 1Gi")


class OomParams(ClusterParams):
    cases: list[MemoryCase] = Field(
        default=[
            MemoryCase(name="req-1gi-lim-512mi", request="1Gi", limit="512Mi"),
            MemoryCase(name="req-512mi-lim-1gi", request="512Mi", limit="1Gi"),
        ],
        min_length=1,
    )
    allocate_mib: int = Field(default=1536, ge=64, description="what each pod tries to allocate, MiB")
    hold_s: float = Field(default=30, ge=0, description="how long a pod that survives keeps its memory, s")
    timeout_s: float = Field(default=180, gt=0)


def last_allocated(log: str) -> int | None:
    """The last 'allocated_mib N' line of the allocator's log (what it held when it stopped)."""
    vals = re.findall(r"allocated_mib (\d+)", log)
    return int(vals[-1]) if vals else None


def rejected(exc: Exception) -> str | None:
    """The API server's message when it refused the object (422 Invalid), else None."""
    if getattr(exc, "status", None) != 422:
        return None
    body = getattr(exc, "body", None) or b""
    try:
        message = json.loads(body).get("message")  # a Status object
    except (ValueError, AttributeError):
        message = None
    return str(message or body or exc)[:300]


def oom_by_qos(ctx: Context, p: OomParams) -> Output:
    """Each requests/limits case allocates past its limit: accepted?, QoS, OOMKilled or evicted, MiB at death."""
    t = Table.of(
        "cases",
        [
            ("case", ""),
            ("request", ""),
            ("limit", ""),
            ("accepted", ""),
            ("qos", ""),
            ("qos_by_rule", ""),
            ("oom_killed", ""),
            ("evicted", ""),
            ("exit_code", ""),
            ("allocated_at_end", "MiB"),
            ("api_message", ""),
        ],
    )
    with on_stack(ctx, p) as (s, view):
        for c in p.cases:
            res = {"requests": {"cpu": "100m", "memory": c.request}, "limits": {"cpu": "200m", "memory": c.limit}}
            m = pods.python_pod(view.image("inference"), c.name, ALLOC.format(mib=p.allocate_mib, hold=p.hold_s), res)
            try:
                s.apply(m)
            except Exception as exc:
                msg = rejected(exc)
                if msg is None:
                    raise
                t.add(c.name, c.request, c.limit, False, "-", qos_class(m["spec"]), "-", "-", "-", "-", msg)
                continue
            pod: dict[str, Any] = s.wait(
                f"pod {c.name} ended or outlived its allocation",
                lambda c=c: _ended(s.get("v1", "Pod", c.name)),
                p.timeout_s + p.hold_s,
                poll_s=2.0,
            )
            log = s.api.logs(c.name, s.namespace)
            term = terminations(pod)
            t.add(
                c.name,
                c.request,
                c.limit,
                True,
                pod["status"].get("qosClass", "-"),
                qos_class(pod["spec"]),
                oom_killed(pod),
                evicted(pod),
                term[0].exit_code if term else "-",
                last_allocated(log) or "-",
                "-",
            )
    return Output(
        tables=[t],
        notes=[
            "a container past its memory limit is OOM-killed by the kernel inside its cgroup (exit 137) before "
            "node memory pressure; kubelet eviction ranks pods by usage above their request, then priority"
        ],
    )


def _ended(pod: dict[str, Any] | None) -> dict[str, Any] | None:
    if pod is None:
        return None
    st = pod.get("status") or {}
    if st.get("phase") in ("Succeeded", "Failed") or oom_killed(pod) or evicted(pod):
        return pod
    return None
