"""GPU memory while several versions of one model are loaded at once (d34.e4): versions loaded one after another
into one process on GPU 0, each held; after each load the memory PyTorch allocated and reserved, the peak while
every loaded version answers one request, and NVML's memory in use; then the first version unloaded.

A substitute for Triton holding several versions of a model on a GPU (version_policy all; Triton's GPU backends
cannot travel to the GPU machine): one PyTorch process holds the versions' weights, as one tritonserver process does.
"""

from __future__ import annotations

import gc
from typing import Annotated

from pydantic import Field

from ailab.contract import Context, Output, Params, Skip, Substitute, Table
from workloads.gpu.experiments.instances import ModelShape


class VersionsParams(Params):
    model: ModelShape = Field(
        default=ModelShape(dim=4096, layers=8, batch=64), description="every version's shape (its own weights)"
    )
    versions: Annotated[int, Field(ge=1, le=16, description="versions loaded one after another")] = 4


def versions_memory(ctx: Context, p: VersionsParams) -> Output:
    """Memory after each version is loaded and while all loaded versions answer; then after unloading version 1."""
    if ctx.device != "cuda":
        raise Skip("needs an NVIDIA GPU: the versions are loaded on GPU 0")
    import torch

    from workloads.gpu.clients import NvmlSampler

    nvml = NvmlSampler(0.1)
    _, before, _ = nvml.read()  # this process has no CUDA context yet
    mib = 2**20
    torch.zeros(1, device="cuda")
    torch.cuda.synchronize()
    _, with_context, _ = nvml.read()
    s = p.model
    x = torch.randn(s.batch, s.dim, device="cuda", dtype=torch.float16)
    t = Table.of(
        "memory",
        [("step", ""), ("versions loaded", ""), ("allocated", "MiB"), ("reserved", "MiB"),
         ("peak while answering", "MiB"), ("NVML in use, this process", "MiB"), ("weights per version", "MiB")],
        caption=f"one process on GPU 0; a version = {s.layers} x Linear({s.dim}, {s.dim}) + ReLU in FP16 with its own "
        f"weights; 'peak while answering' = torch.cuda.max_memory_allocated() while every loaded version answers "
        f"one request of {s.batch} rows; NVML in use = the GPU's memory in use minus before this process made its "
        "CUDA context",
    )  # fmt: skip
    versions: dict[int, torch.nn.Module] = {}
    sums: dict[int, float] = {}

    def row(step: str, weights_mib: float | str) -> None:
        torch.cuda.reset_peak_memory_stats()
        with torch.no_grad():
            for v, m in versions.items():
                sums[v] = float(m(x).float().sum())
        torch.cuda.synchronize()
        _, used, _ = nvml.read()
        t.add(step, len(versions), round(torch.cuda.memory_allocated() / mib, 1),
              round(torch.cuda.memory_reserved() / mib, 1), round(torch.cuda.max_memory_allocated() / mib, 1),
              round(used - before), weights_mib if isinstance(weights_mib, str) else round(weights_mib, 1))  # fmt: skip

    for v in range(1, p.versions + 1):
        torch.manual_seed(v)
        mods: list[torch.nn.Module] = []
        for _ in range(s.layers):
            mods += [torch.nn.Linear(s.dim, s.dim, device="cuda", dtype=torch.float16), torch.nn.ReLU()]
        versions[v] = torch.nn.Sequential(*mods).eval()
        weights = sum(q.numel() * q.element_size() for q in versions[v].parameters()) / mib
        row(f"load v{v}", weights)
        ctx.log(f"v{v} loaded: {torch.cuda.memory_allocated() / mib:.0f} MiB allocated")
    del versions[1]
    gc.collect()
    row("unload v1", "-")
    torch.cuda.empty_cache()
    row("unload v1, cache emptied", "-")
    distinct = len({round(total, 3) for total in sums.values()}) == len(sums)
    return Output(
        tables=[t],
        notes=[
            f"The CUDA context alone: {round(with_context - before)} MiB of NVML's memory in use before any tensor.",
            "Every loaded version answered with its own weights (their outputs' sums differ)."
            if distinct
            else "Two loaded versions answered alike: their weights may not differ.",
            "Unloading frees a version's weights into PyTorch's cache ('allocated' drops, 'reserved' does not) until "
            "the cache is emptied; the GPU sees the memory again only then (NVML).",
        ],
        substitute=Substitute(
            instead_of="Triton holding several versions of one model on a GPU (version_policy all)",
            used="the versions' weights loaded into one PyTorch process on the GPU, as one tritonserver process "
            "holds them, each answering a request",
            why="Triton with GPU backends cannot be brought to the GPU machine: no registry reaches it and a call "
            "carries 64 MiB",
        ),
    )
