"""Model instances sharing one GPU (d07.e3, d18.e1, d51.e2-e4): layouts of closed-loop instances run side by side,
one process each; per model its throughput and exact p50/p99 beside the same model running alone, per layout the
GPU memory it takes and the GPU's utilisation, both read from NVML.

A substitute for Triton's instance_group on a GPU: Triton with GPU backends cannot be brought to the GPU machine
(no registry reaches it and a call carries 64 MiB), so each instance is a PyTorch process holding its model on the
GPU and sending requests to it in a closed loop (workloads/gpu/worker.py: host-to-device copy, forward, result back).
That is how Triton's python backend runs a GPU model too, one stub process and CUDA context per instance; what the
stand-in lacks is Triton's front end and scheduler in front of the instances.
"""

from __future__ import annotations

from typing import Annotated

import numpy as np
from pydantic import Field, model_validator

from ailab.contract import Context, Output, Params, Skip, Substitute, Table

ModelName = Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]{0,31}$")]


class ModelShape(Params):
    """A model as the worker builds it: `layers` x (Linear(dim, dim) + ReLU) in FP16, `batch` rows a request."""

    dim: Annotated[int, Field(ge=16, le=16384)]
    layers: Annotated[int, Field(ge=1, le=64)]
    batch: Annotated[int, Field(ge=1, le=4096)]


class InstancesParams(Params):
    models: Annotated[dict[ModelName, ModelShape], Field(min_length=1)] = Field(
        default={
            # ~0.5 TFLOP a request: milliseconds of tensor-core work, the GPU-bound model
            "large": ModelShape(dim=8192, layers=16, batch=256),
            # a few small kernels a request: launch- and copy-bound, the latency-sensitive model
            "small": ModelShape(dim=512, layers=2, batch=1),
        },
        description="the models the layouts name",
    )
    layouts: Annotated[list[Annotated[list[ModelName], Field(min_length=1, max_length=16)]], Field(min_length=1)] = (
        Field(description="each a set of instances run side by side: one model name per instance (one process each)")
    )
    seconds: Annotated[float, Field(gt=0, le=600)] = Field(default=5.0, description="timed window of every layout")
    sample_s: Annotated[float, Field(ge=0.02, le=2.0)] = Field(
        default=0.1, description="how often NVML's memory in use and utilisation are read"
    )

    @model_validator(mode="after")
    def _known_models(self) -> InstancesParams:
        for i, layout in enumerate(self.layouts):
            unknown = sorted(set(layout) - set(self.models))
            if unknown:
                raise ValueError(f"layouts[{i}] names {unknown}: allowed {', '.join(sorted(self.models))}")
        return self


def label(layout: list[str]) -> str:
    """'large x2 + small x2' for ['large', 'large', 'small', 'small']."""
    counts: dict[str, int] = {}
    for m in layout:
        counts[m] = counts.get(m, 0) + 1
    return " + ".join(f"{m} x{n}" for m, n in counts.items())


def summarise(layout: list[str], shapes: dict[str, ModelShape], per_client: list[dict], seconds: float) -> dict:
    """Per model of one layout: instances, requests/s, inferences/s and exact (nearest-rank) p50/p99 over every
    request of its instances; the PyTorch-reserved memory of its processes."""
    from workloads.serving.stats import percentile

    out: dict[str, dict] = {}
    for name in dict.fromkeys(layout):
        runs = [r for m, r in zip(layout, per_client, strict=True) if m == name]
        lat = np.sort(np.concatenate([np.asarray(r["latencies_ms"], dtype=np.float64) for r in runs]))
        req = sum(r["requests"] for r in runs)
        out[name] = {
            "instances": len(runs),
            "rps": req / seconds,
            "ips": req * shapes[name].batch / seconds,
            "p50": percentile(lat, 50),
            "p99": percentile(lat, 99),
            "reserved_mib": sum(r.get("reserved_mib", 0.0) for r in runs),
        }
    return out


def instance_layouts(ctx: Context, p: InstancesParams) -> Output:
    """Every layout's instances side by side on GPU 0: per model throughput and p50/p99 against the model alone; per
    layout the GPU memory it took (NVML, in use during the run minus before it) and the GPU's mean utilisation."""
    if ctx.device != "cuda":
        raise Skip("needs an NVIDIA GPU: the instances are PyTorch processes with their models on GPU 0")
    from workloads.gpu.clients import NvmlSampler, run_clients

    per_model = Table.of(
        "per_model",
        [("layout", ""), ("model", ""), ("instances", ""), ("requests", "req/s"), ("inferences", "rows/s"),
         ("p50", "ms"), ("p99", "ms"), ("p50 vs alone", "x"), ("p99 vs alone", "x"),
         ("requests per instance vs alone", "x")],
        caption="closed loop, one request in flight per instance; a request = host-to-device copy of `batch` rows, "
        "forward, the result back to the host; 'vs alone' = against the layout holding one instance of that model "
        "only ('-' when the run has none); exact nearest-rank percentiles over every request of the model's "
        f"instances in the {p.seconds:g} s window",
    )  # fmt: skip
    per_layout = Table.of(
        "per_layout",
        [("layout", ""), ("instances", ""), ("requests", "req/s"), ("GPU memory taken", "MiB"),
         ("reserved by PyTorch", "MiB"), ("GPU utilisation", "%")],
        caption="GPU memory taken = NVML's memory in use at its highest during the layout minus before its processes "
        "started (CUDA contexts included); reserved by PyTorch = the sum of torch.cuda.memory_reserved() over its "
        f"processes; utilisation = NVML's, mean of the reads in the timed window (every {p.sample_s:g} s)",
    )  # fmt: skip
    shapes = p.models
    sampler = NvmlSampler(p.sample_s)
    results: list[tuple[list[str], dict, float, float]] = []
    notes: list[str] = []
    for layout in p.layouts:
        _, before, _ = sampler.read()
        cfgs = [{"dim": shapes[m].dim, "layers": shapes[m].layers, "batch": shapes[m].batch} for m in layout]
        with sampler:
            run = run_clients(len(layout), {"seconds": p.seconds}, per_client=cfgs, timeout_s=120 + 2 * p.seconds)
        inside = [u for t, _, u in sampler.samples if run.started_at <= t <= run.started_at + p.seconds]
        peak = max((mib for _, mib, _ in sampler.samples), default=float("nan"))
        results.append((layout, summarise(layout, shapes, run.per_client, p.seconds), peak - before,
                        float(np.mean(inside)) if inside else float("nan")))  # fmt: skip
        late = max(r.get("late_s", 0.0) for r in run.per_client)
        if late > 0.1:  # its window then overlapped the others' only in part
            notes.append(f"{label(layout)}: an instance began timing {late:.2f} s after the common start")
        ctx.log(f"{label(layout)}: {run.requests_per_s:.0f} req/s")
    alone = {lay[0]: s[lay[0]] for lay, s, _, _ in results if len(lay) == 1}
    for layout, stats, taken, util in results:
        for name, s in stats.items():
            base = alone.get(name)

            def vs(key: str, value: float, base: dict | None = base) -> float | str:
                return round(value / base[key], 3) if base and base[key] else "-"

            per_model.add(label(layout), name, s["instances"], round(s["rps"], 1), round(s["ips"], 1),
                          round(s["p50"], 3), round(s["p99"], 3), vs("p50", s["p50"]), vs("p99", s["p99"]),
                          vs("rps", s["rps"] / s["instances"]))  # fmt: skip
        per_layout.add(label(layout), len(layout), round(sum(s["rps"] for s in stats.values()), 1), round(taken),
                       round(sum(s["reserved_mib"] for s in stats.values())), round(util, 1))  # fmt: skip
    models = "; ".join(f"{n}: {s.layers} x Linear({s.dim}, {s.dim}) + ReLU, FP16, batch {s.batch}"
                       for n, s in shapes.items())  # fmt: skip
    return Output(
        tables=[per_model, per_layout],
        notes=[
            f"Models: {models}.",
            "Each instance is its own process and CUDA context; without MPS the GPU time-slices between contexts, "
            "so instances of one layout take turns on the GPU rather than sharing its SMs at the same moment.",
            *notes,
        ],
        substitute=Substitute(
            instead_of="Triton model instances (instance_group KIND_GPU) serving the models on one GPU",
            used="one PyTorch process per instance holding its model on the GPU, each a closed loop of requests "
            "(workloads/gpu/worker.py), as Triton's python backend runs a GPU model's instances (a stub process and "
            "CUDA context each); no Triton front end or scheduler in front of them",
            why="Triton with GPU backends cannot be brought to the GPU machine: no registry reaches it and a call "
            "carries 64 MiB; the CPU tritonserver 2.51 here has no GPU",
        ),
    )
