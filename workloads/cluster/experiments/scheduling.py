"""Scheduling GPU pods: the device plugin's resource, GPU counts, taints and tolerations, node selectors, GPU
affinity and Topology Manager admission. Each pod is built from the week stack's GPU smoke-test Job and its
outcome is read from the pod's PodScheduled condition and the scheduler's events."""

from __future__ import annotations

import re
from typing import Any

from pydantic import Field

from ailab.contract import Context, Output, Skip, Table
from workloads.cluster import pods
from workloads.cluster.objects import GPU, NodeGpus, node_gpus, parse_events, placement, ts
from workloads.cluster.run import needs, on_stack
from workloads.cluster.session import ClusterParams, ClusterSession

TAINT = {"key": GPU, "value": "present", "effect": "NoSchedule"}


def gpu_nodes(s: ClusterSession) -> list[NodeGpus]:
    """Nodes advertising nvidia.com/gpu; Skip when there is none."""
    found = [n for n in (node_gpus(x) for x in s.nodes()) if n.allocatable > 0]
    if not found:
        raise Skip(f"no node advertises {GPU}: install the NVIDIA device plugin (the week stack's gpu component)")
    return found


def nodes_table(nodes: list[NodeGpus]) -> Table:
    t = Table.of("gpu_nodes", [("node", ""), ("allocatable", "GPUs"), ("product", ""), ("taints", "")])
    for n in nodes:
        t.add(n.name, n.allocatable, n.product or "-", ", ".join(n.taints) or "-")
    return t


def outcome_table(name: str, rows: list[tuple[str, dict[str, Any]]]) -> Table:
    """One row per (case, pod): scheduled or not, node, and the scheduler's reasons."""
    t = Table.of(name, [("case", ""), ("gpus", "GPUs"), ("scheduled", ""), ("node", ""), ("phase", ""), ("why", "")])
    for case, pod in rows:
        pl = placement(pod)
        why = "; ".join(f"{k} ({v} nodes)" for k, v in pl.why.items()) or pl.reason or "-"
        t.add(case, pl.gpus, pl.scheduled, pl.node or "-", pl.phase, why)
    return t


def events_table(events: list[dict[str, Any]], t0: float) -> Table:
    t = Table.of("events", [("t", "s"), ("object", ""), ("reason", ""), ("message", "")])
    for e in parse_events(events):
        t.add(round(e.t - t0, 1), f"{e.kind}/{e.name}", e.reason, e.message[:160])
    return t


class GpuPodParams(ClusterParams):
    gpus: int = Field(default=1, ge=1, le=8, description="nvidia.com/gpu requested (= limit)")
    timeout_s: float = Field(default=300, gt=0, description="how long to wait for the pod to finish, s")


def gpu_pod(ctx: Context, p: GpuPodParams) -> Output:
    """A pod asking for nvidia.com/gpu: the scheduler's events, where it ran, the GPUs `nvidia-smi -L` saw."""
    with on_stack(ctx, p, needs.GPU_NODES) as (s, view):
        nodes = gpu_nodes(s)
        s.apply(pods.gpu_pod(view, "gpu-pod", p.gpus, ["nvidia-smi", "-L"]))
        pod = s.wait("pod gpu-pod finished", lambda: pods.settled(s.get("v1", "Pod", "gpu-pod")), p.timeout_s)
        logs = s.api.logs("gpu-pod", s.namespace) if pod["status"].get("phase") in ("Succeeded", "Failed") else ""
        events = s.events()
    listed = [ln for ln in logs.splitlines() if re.match(r"GPU \d+:", ln)]
    t0 = ts(pod["metadata"]["creationTimestamp"]) or 0.0
    gpus = Table.of("gpus_seen", [("line", "")], caption="what nvidia-smi -L printed inside the pod")
    for ln in listed:
        gpus.add(ln)
    return Output(
        tables=[
            outcome_table("placement", [(f"request {p.gpus} GPU", pod)]),
            gpus,
            events_table(events, t0),
            nodes_table(nodes),
        ],
        notes=[f"usable: {len(listed) == p.gpus} ({len(listed)} GPU(s) listed for {p.gpus} requested)"],
    )


class GpuCountsParams(ClusterParams):
    counts: list[int] = Field(default=[1, 2, 4], min_length=1, description="GPUs per pod, one pod each")
    timeout_s: float = Field(default=120, gt=0)


def gpu_counts(ctx: Context, p: GpuCountsParams) -> Output:
    """Pods asking for 1/2/4 GPUs at once: which fit on which node and which stay Pending, and why."""
    with on_stack(ctx, p, needs.GPU_NODES, needs.FOUR_GPU_NODE) as (s, view):
        nodes = gpu_nodes(s)
        for n in p.counts:
            s.apply(pods.gpu_pod(view, f"gpu-{n}", n, ["sleep", "60"]))
        rows = [
            (
                f"request {n}",
                s.wait(f"pod gpu-{n} placed", lambda n=n: pods.placed(s.get("v1", "Pod", f"gpu-{n}")), p.timeout_s),
            )
            for n in p.counts
        ]
    return Output(tables=[outcome_table("placement", rows), nodes_table(nodes)])


class TaintParams(ClusterParams):
    taint_gpu_nodes: bool = Field(default=True, description=f"add {GPU}=present:NoSchedule where missing (undone)")
    timeout_s: float = Field(default=120, gt=0)


def taints(ctx: Context, p: TaintParams) -> Output:
    """Tainted GPU nodes: GPU pods with and without the toleration, and a CPU pod: where each lands."""
    with on_stack(ctx, p, needs.GPU_NODES) as (s, view):
        nodes = gpu_nodes(s)
        if p.taint_gpu_nodes:
            for n in nodes:
                node = s.get("v1", "Node", n.name)
                current = (node or {}).get("spec", {}).get("taints") or []
                if not any(t["key"] == GPU and t["effect"] == "NoSchedule" for t in current):
                    s.patch("v1", "Node", n.name, None, {"spec": {"taints": [*current, TAINT]}})
        cases = {
            "gpu-tolerates": pods.gpu_pod(view, "gpu-tolerates", 1, ["sleep", "30"]),
            "gpu-no-toleration": pods.gpu_pod(view, "gpu-no-toleration", 1, ["sleep", "30"], tolerate=False),
            "cpu-no-toleration": pods.gpu_pod(view, "cpu-no-toleration", 0, ["sleep", "30"], tolerate=False),
        }
        for m in cases.values():
            s.apply(m)
        rows = [
            (c, s.wait(f"pod {c} placed", lambda c=c: pods.placed(s.get("v1", "Pod", c)), p.timeout_s)) for c in cases
        ]
        after = [node_gpus(x) for x in s.nodes() if node_gpus(x).allocatable > 0]
    gpu_names = {n.name for n in nodes}
    verdict = {
        "gpu-tolerates": lambda pl: pl.scheduled and pl.node in gpu_names,
        "gpu-no-toleration": lambda pl: not pl.scheduled,
        "cpu-no-toleration": lambda pl: pl.node not in gpu_names,
    }
    checks = Table.of("checks", [("case", ""), ("expected", ""), ("result", "")])
    expected = {
        "gpu-tolerates": "on a GPU node",
        "gpu-no-toleration": "Pending (untolerated taint)",
        "cpu-no-toleration": "never on a GPU node",
    }
    for case, pod in rows:
        checks.add(case, expected[case], "PASS" if verdict[case](placement(pod)) else "FAIL")
    return Output(tables=[outcome_table("placement", rows), checks, nodes_table(after)])


class SelectorParams(ClusterParams):
    node: str | None = Field(default=None, description="node to pin to (default: the first GPU node)")
    timeout_s: float = Field(default=120, gt=0)


def node_selector(ctx: Context, p: SelectorParams) -> Output:
    """A GPU pod pinned by nodeSelector to one node, and one pinned to a node that does not exist."""
    with on_stack(ctx, p, needs.GPU_NODES) as (s, view):
        nodes = gpu_nodes(s)
        target = p.node or nodes[0].name
        if target not in {n["metadata"]["name"] for n in s.nodes()}:
            raise ValueError(f"node {target!r}: no such node (GPU nodes: {', '.join(n.name for n in nodes)})")
        for case, host in (("pinned", target), ("pinned-missing", "no-such-node")):
            m = pods.gpu_pod(view, case, 1, ["sleep", "30"])
            m["spec"]["nodeSelector"] = {"kubernetes.io/hostname": host}
            s.apply(m)
        rows = [
            (c, s.wait(f"pod {c} placed", lambda c=c: pods.placed(s.get("v1", "Pod", c)), p.timeout_s))
            for c in ("pinned", "pinned-missing")
        ]
    ok = placement(rows[0][1]).node == target and not placement(rows[1][1]).scheduled
    return Output(
        tables=[outcome_table("placement", rows), nodes_table(nodes)],
        notes=[f"pinned to {target}: {'PASS' if ok else 'FAIL'}"],
    )


class AffinityParams(ClusterParams):
    product: str | None = Field(default=None, description="required nvidia.com/gpu.product (default: any GPU node)")
    timeout_s: float = Field(default=120, gt=0)


def gpu_affinity(ctx: Context, p: AffinityParams) -> Output:
    """Node affinity on GPU feature discovery labels (required: a GPU product; preferred: the most GPUs)."""
    with on_stack(ctx, p, needs.GPU_NODES) as (s, view):
        nodes = gpu_nodes(s)
        products = sorted({n.product for n in nodes if n.product})
        if not products:
            raise Skip("no node has the nvidia.com/gpu.product label: GPU feature discovery (gpu component) is off")
        want = p.product or products[0]
        m = pods.gpu_pod(view, "affine", 1, ["sleep", "30"])
        most = max(nodes, key=lambda n: n.allocatable)
        m["spec"]["affinity"] = {
            "nodeAffinity": {
                "requiredDuringSchedulingIgnoredDuringExecution": {
                    "nodeSelectorTerms": [
                        {"matchExpressions": [{"key": "nvidia.com/gpu.product", "operator": "In", "values": [want]}]}
                    ]
                },
                "preferredDuringSchedulingIgnoredDuringExecution": [
                    {
                        "weight": 50,
                        "preference": {
                            "matchExpressions": [
                                {"key": "kubernetes.io/hostname", "operator": "In", "values": [most.name]}
                            ]
                        },
                    }
                ],
            }
        }
        s.apply(m)
        pod = s.wait("pod affine placed", lambda: pods.placed(s.get("v1", "Pod", "affine")), p.timeout_s)
    pl = placement(pod)
    match = {n.name: n.product for n in nodes}.get(pl.node) == want
    return Output(
        tables=[outcome_table("placement", [(f"product {want}", pod)]), nodes_table(nodes)],
        notes=[
            f"required product honoured: {'PASS' if match else 'FAIL'}; preferred node {most.name}: "
            f"{'yes' if pl.node == most.name else 'no'}"
        ],
    )


# --- Topology Manager -----------------------------------------------------------------------------------------


def gpu_cpu_affinity(topo: str) -> dict[str, str]:
    """`nvidia-smi topo -m` -> {GPU0: "0-31", ...} (the CPU Affinity column)."""
    lines = [ln for ln in topo.splitlines() if ln.strip()]
    header = next((ln for ln in lines if "CPU Affinity" in ln), None)
    if header is None:
        return {}
    cols = re.split(r"\t+|\s{2,}", header.strip())
    idx = cols.index("CPU Affinity") + 1  # data rows start with the row's own name
    out = {}
    for ln in lines:
        parts = re.split(r"\t+|\s{2,}", ln.strip())
        if re.fullmatch(r"GPU\d+", parts[0]) and len(parts) > idx:
            out[parts[0]] = parts[idx]
    return out


class TopologyParams(ClusterParams):
    cpus: int = Field(default=2, ge=1, le=64, description="whole CPUs of the Guaranteed pod (static CPU manager)")
    memory: str = Field(default="1Gi", description="memory request = limit")
    timeout_s: float = Field(default=180, gt=0)


def topology(ctx: Context, p: TopologyParams) -> Output:
    """Per GPU node: the kubelet's Topology/CPU Manager policies (configz), and a Guaranteed 1-GPU pod pinned
    there: admitted or TopologyAffinityError, its cpuset and the GPU's NUMA CPU affinity."""
    with on_stack(ctx, p, needs.GPU_NODES, needs.TOPOLOGY) as (s, view):
        nodes = gpu_nodes(s)
        policies = Table.of(
            "kubelet_policies",
            [("node", ""), ("topology_manager", ""), ("scope", ""), ("cpu_manager", ""), ("reserved_cpus", "")],
        )
        placed_rows = Table.of(
            "admission", [("node", ""), ("phase", ""), ("reason", ""), ("pod_cpuset", ""), ("gpu_cpu_affinity", "")]
        )
        for i, n in enumerate(nodes):
            cfg = s.api.raw(f"/api/v1/nodes/{n.name}/proxy/configz").get("kubeletconfig", {})
            policies.add(
                n.name,
                cfg.get("topologyManagerPolicy", "none"),
                cfg.get("topologyManagerScope", "container"),
                cfg.get("cpuManagerPolicy", "none"),
                cfg.get("reservedSystemCPUs", "-"),
            )
            name = f"topo-{i}"
            m = pods.gpu_pod(
                view,
                name,
                1,
                ["sh", "-c", "nvidia-smi topo -m; echo CPUSET $(cat /sys/fs/cgroup/cpuset.cpus.effective)"],
                cpu=str(p.cpus),
                memory=p.memory,
            )
            m["spec"]["nodeName"] = n.name
            s.apply(m)
            pod = s.wait(f"pod {name} finished", lambda name=name: pods.settled(s.get("v1", "Pod", name)), p.timeout_s)
            st = pod.get("status") or {}
            log = s.api.logs(name, s.namespace) if st.get("phase") == "Succeeded" else ""
            cpuset = next((ln.split(" ", 1)[1] for ln in log.splitlines() if ln.startswith("CPUSET ")), "-")
            aff = gpu_cpu_affinity(log)
            placed_rows.add(
                n.name,
                st.get("phase", ""),
                st.get("reason", "") or "-",
                cpuset,
                ", ".join(f"{g}: {c}" for g, c in aff.items()) or "-",
            )
    return Output(
        tables=[policies, placed_rows],
        notes=[
            "policies are the kubelets' own (a runner cannot restart kubelets): compare them by running on nodes "
            "configured differently (k3s role variables k3s_topology_manager_policy / k3s_cpu_manager_policy)",
            "performance under each policy is not measured here: this records placement and admission only",
        ],
    )
