"""GPU/NUMA topology of a host (d53.e1): which GPU pairs share a fast link, which CPUs and NUMA node each GPU
is local to, and how to bind a process there. Reads a live host, or the report the gpu_topology role writes."""

from __future__ import annotations

import json
import shutil
import subprocess

from pydantic import Field, FilePath

from ailab.contract import Context, Output, Params, Skip, Table
from workloads.sched.topology import (
    LINK_MEANING,
    LINK_RANK,
    link_kind,
    parse_cpulist,
    parse_numactl_hardware,
    parse_nvidia_smi_topo,
)


class TopologyParams(Params):
    report: FilePath | None = Field(
        default=None,
        description="JSON written by the gpu_topology role (/var/lib/ailab/gpu_topology.json, or the copy fetched "
        "to .lab/topology/<host>.json); without it the runner calls nvidia-smi topo -m and numactl live",
    )


def _read_sources(p: TopologyParams) -> tuple[str, str | None, str]:
    """(nvidia-smi topo -m text, numactl text or None, where they came from)."""
    if report := p.report:
        data = json.loads(report.read_text(encoding="utf-8"))
        if not data.get("nvidia_smi_topo"):
            raise Skip(f"{report}: the gpu_topology report has no nvidia-smi output (host without a GPU)")
        return data["nvidia_smi_topo"], data.get("numactl_hardware"), f"gpu_topology report {report}"
    if not shutil.which("nvidia-smi"):
        raise Skip("nvidia-smi not found: needs an NVIDIA GPU and driver (or params.report from the gpu_topology role)")
    topo = subprocess.run(["nvidia-smi", "topo", "-m"], capture_output=True, text=True, check=False, timeout=60)
    if topo.returncode != 0:
        raise Skip(f"nvidia-smi topo -m failed: {topo.stderr.strip() or topo.stdout.strip()}")
    numa = None
    if shutil.which("numactl"):
        p = subprocess.run(["numactl", "--hardware"], capture_output=True, text=True, check=False, timeout=60)
        numa = p.stdout if p.returncode == 0 else None
    return topo.stdout, numa, "live nvidia-smi topo -m / numactl --hardware"


def gpu_topology(ctx: Context, p: TopologyParams) -> Output:
    """GPU-GPU links, GPU CPU/NUMA affinity and NUMA distances, with binding advice."""
    topo_text, numa_text, source = _read_sources(p)
    topo = parse_nvidia_smi_topo(topo_text)
    out = Output(notes=[f"source: {source}"])

    links = Table.of(
        "gpu_links",
        [("gpu_a", ""), ("gpu_b", ""), ("link", ""), ("rank", "1=best"), ("path", "")],
        caption="Path between each pair of GPUs (nvidia-smi topo -m); lower rank is a faster path.",
    )
    for i, a in enumerate(topo.gpus):
        for b in topo.gpus[i + 1 :]:
            link = topo.links[(a, b)]
            kind = link_kind(link)
            links.add(a, b, link, LINK_RANK.get(kind, 9), LINK_MEANING.get(kind, "unknown"))
    out.tables.append(links)

    aff = Table.of(
        "gpu_affinity",
        [("gpu", ""), ("cpu_affinity", "cpus"), ("cpus", "count"), ("numa_node", ""), ("bind_with", "")],
        caption="CPUs and NUMA node local to each GPU; run its host process there.",
    )
    for gpu in topo.gpus:
        a = topo.affinity.get(gpu, {})
        cpus, node = a.get("CPU Affinity", "N/A"), a.get("NUMA Affinity", "N/A")
        bind = f"numactl --cpunodebind={node} --membind={node}" if node.isdigit() else f"taskset -c {cpus}"
        aff.add(gpu, cpus, len(parse_cpulist(cpus)), node, bind)
    out.tables.append(aff)

    if numa_text:
        nodes = parse_numactl_hardware(numa_text)
        numa = Table.of(
            "numa_nodes",
            [("node", ""), ("cpus", "count"), ("memory", "MiB"), ("distances", "relative, 10=local")],
        )
        for n in nodes:
            numa.add(n.id, len(n.cpus), n.size_mib, " ".join(map(str, n.distances)))
        out.tables.append(numa)

    worst = [r for r in links.rows if r[2] == "SYS"]
    if worst:
        out.notes.append(f"{len(worst)} GPU pair(s) cross NUMA nodes (SYS): keep their peer traffic off the hot path.")
    return out
