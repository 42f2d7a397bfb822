"""GPU utilisation against batch size for a dynamically batching GPU worker (d54.e3)."""

from __future__ import annotations

from pydantic import Field

from ailab.contract import Column, Context, Output, Params, Series, Skip


class UtilParams(Params):
    max_batches: list[int] = Field([1, 4, 16, 64], min_length=1)
    clients: int = Field(64, gt=0, description="closed-loop client threads")
    seconds: float = Field(4.0, gt=0)
    dim: int = Field(4096, gt=0)
    layers: int = Field(8, gt=0)


def utilisation_vs_batch(ctx: Context, p: UtilParams) -> Output:
    import torch

    from workloads.engines.tables import table
    from workloads.gpu.batching import serve
    from workloads.gpu.clients import UtilSampler

    if ctx.device != "cuda":
        raise Skip("needs a CUDA GPU and NVML (utilisation is read from the lab's exporter)")
    torch.manual_seed(0)
    mods = []
    for _ in range(p.layers):
        mods += [torch.nn.Linear(p.dim, p.dim), torch.nn.ReLU()]
    model = torch.nn.Sequential(*mods).cuda().half().eval()
    sampler = UtilSampler(0.1)
    rows = []
    for b in p.max_batches:
        with sampler:
            r = serve(model, p.dim, "cuda", b, p.clients, p.seconds)
        rows.append(
            {
                "max_batch": b,
                "mean_batch": r.mean_batch,
                "requests_per_s": r.requests_per_s,
                "p50_ms": r.p50_ms,
                "p99_ms": r.p99_ms,
                "gpu_util_pct": sampler.mean_pct(skip=5),
            }
        )
    s = Series("util_vs_batch", Column("mean batch formed", ""), Column("GPU utilisation", "%"), log_x=True)
    t = Series("throughput_vs_batch", Column("mean batch formed", ""), Column("throughput", "req/s"), log_x=True)
    for r in rows:
        s.point("worker", r["mean_batch"], r["gpu_util_pct"])
        t.point("worker", r["mean_batch"], r["requests_per_s"])
    out = Output(series=[s, t])
    out.tables.append(
        table(
            "utilisation_vs_batch",
            rows,
            caption=f"{p.clients} closed-loop client threads, one worker "
            f"thread batching up to max_batch (2 ms max wait), {p.layers} x Linear({p.dim}) FP16; "
            "utilisation = NVML's busy share scraped from the lab's exporter",
        )
    )
    out.notes.append(
        "NVML utilisation is the share of time any kernel ran, not SM occupancy: a small batch can show a "
        "high value while the GPU's SMs are mostly idle"
    )
    return out
