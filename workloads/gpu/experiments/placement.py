"""Host placement of an inference client (d53.e2, d53.e3): the client pinned to different CPU sets, and to the GPU's
NUMA node vs another one (when the machine has one node, the result says so)."""

from __future__ import annotations

from pydantic import Field

from ailab.contract import Context, Output, Params, Skip


class PlacementParams(Params):
    numa: bool = Field(False, description="compare the GPU's NUMA node with a remote one instead of CPU-set sizes")
    seconds: float = Field(3.0, gt=0)
    batch: int = Field(16, gt=0)
    dim: int = Field(4096, gt=0)
    cpu_prep: int = Field(2_000_000, ge=0, description="host-side preprocessing elements per request")


def placement_study(ctx: Context, p: PlacementParams) -> Output:
    import os

    from workloads.engines.tables import table
    from workloads.gpu.clients import run_clients
    from workloads.gpu.placement import gpu_numa_node, numa_nodes, pci_address

    if ctx.device != "cuda":
        raise Skip("needs a CUDA GPU (the client copies to and runs on it)")
    import torch

    cpus = sorted(os.sched_getaffinity(0))
    nodes = numa_nodes()
    props = torch.cuda.get_device_properties(0)
    bus = pci_address(props)
    gnode = gpu_numa_node(bus)
    cfg = {"seconds": p.seconds, "batch": p.batch, "dim": p.dim, "layers": 4, "cpu_prep": p.cpu_prep}
    if p.numa:
        if len(nodes) < 2:
            raise Skip(
                f"needs a host with 2 or more NUMA nodes to compare the GPU's local node with a remote one; "
                f"this one has {len(nodes)} (GPU {bus} on node {gnode})"
            )
        local = gnode if gnode in nodes else min(nodes)
        remote = next(n for n in nodes if n != local)
        sets = {f"local node {local}": nodes[local], f"remote node {remote}": nodes[remote]}
        note = f"GPU {bus} on NUMA node {gnode}"
    else:
        sets = {
            "1 CPU": {cpus[0]},
            "4 CPUs": set(cpus[:4]),
            f"all {len(cpus)} CPUs": set(cpus),
        }
        sets["1 CPU, shared by 2 clients"] = {cpus[-1]}
        note = f"{len(cpus)} CPUs, {len(nodes)} NUMA node(s); GPU {bus} on node {gnode}"
    rows = []
    for name, cs in sets.items():
        n = 2 if "shared" in name else 1
        r = run_clients(n, {**cfg, "threads": min(4, len(cs))}, affinity=[cs])
        rows.append(
            {
                "placement": name,
                "cpus": len(cs),
                "clients": n,
                "requests_per_s": r.requests_per_s,
                "p50_ms": r.p50_ms,
                "p99_ms": r.p99_ms,
            }
        )
    for r in rows:
        r["vs_first"] = round(r["requests_per_s"] / rows[0]["requests_per_s"], 3)
    out = Output(notes=[note])
    out.tables.append(
        table(
            "placement",
            rows,
            caption=f"client pinned with sched_setaffinity; each request: host "
            f"normalisation of {p.cpu_prep} uint8 values, pinned H2D copy, 4 x Linear({p.dim}) FP16 at "
            f"batch {p.batch}, D2H",
        )
    )
    return out
