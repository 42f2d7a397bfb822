"""Preprocessing on the CPU or on the GPU in front of a GPU model (d38.e3): per batch size, each request's raw uint8
input normalised in numpy before the host-to-device copy, or copied raw and normalised on the GPU; latency and
throughput of the whole request (preprocessing, copy, forward, result back), one process at a time.

A substitute for a Triton ensemble whose preprocessing model runs on the CPU or on a GPU (Triton's GPU backends
cannot travel to the GPU machine): the same two placements of the same work in one PyTorch process
(workloads/gpu/worker.py, `cpu_prep` / `gpu_prep`).
"""

from __future__ import annotations

from typing import Annotated

import numpy as np
from pydantic import Field

from ailab.contract import Context, Output, Params, Skip, Substitute, Table

WHERE = ("CPU", "GPU")


class PrepParams(Params):
    dim: Annotated[int, Field(ge=16, le=16384, description="input elements per row (uint8 pixels)")] = 1024
    layers: Annotated[int, Field(ge=1, le=64, description="Linear(dim, dim) + ReLU layers of the FP16 model")] = 4
    batches: Annotated[list[Annotated[int, Field(ge=1, le=8192)]], Field(min_length=1)] = Field(
        default=[1, 16, 128, 1024], description="rows a request"
    )
    seconds: Annotated[float, Field(gt=0, le=600)] = Field(default=5.0, description="timed window of every run")


def prep_placement(ctx: Context, p: PrepParams) -> Output:
    """Per batch size: the request's latency and throughput with its normalisation on the CPU, then on the GPU."""
    if ctx.device != "cuda":
        raise Skip("needs an NVIDIA GPU: the GPU placement normalises on the device")
    from workloads.gpu.clients import run_clients
    from workloads.serving.stats import percentile

    t = Table.of(
        "placement",
        [("batch", ""), ("preprocessing on", ""), ("requests", "req/s"), ("rows", "rows/s"), ("p50", "ms"),
         ("p99", "ms"), ("host-to-device bytes", "B/req"), ("p50 GPU / CPU", "x")],
        caption=f"one process, closed loop, one request in flight: {p.layers} x Linear({p.dim}, {p.dim}) + ReLU in "
        "FP16; CPU = numpy normalises the uint8 rows to float32, they are written into a pinned FP16 buffer and "
        "copied; GPU = the pinned uint8 rows are copied and normalised on the device; the result goes back to the "
        f"host; exact nearest-rank percentiles over every request of the {p.seconds:g} s window",
    )  # fmt: skip
    for b in p.batches:
        p50: dict[str, float] = {}
        rows = []
        for where in WHERE:
            cfg = {"dim": p.dim, "layers": p.layers, "batch": b, "seconds": p.seconds,
                   "cpu_prep": b * p.dim if where == "CPU" else 0, "gpu_prep": where == "GPU"}  # fmt: skip
            out = run_clients(1, cfg, timeout_s=120 + 2 * p.seconds).per_client[0]
            lat = np.sort(np.asarray(out["latencies_ms"], dtype=np.float64))
            p50[where] = percentile(lat, 50)
            rps = out["requests"] / p.seconds
            rows.append([b, where, round(rps, 1), round(rps * b, 1), round(p50[where], 4),
                         round(percentile(lat, 99), 4), b * p.dim * (2 if where == "CPU" else 1)])  # fmt: skip
            ctx.log(f"batch {b}, preprocessing on the {where}: p50 {p50[where]:.3f} ms")
        for r in rows:
            t.add(*r, round(p50["GPU"] / p50["CPU"], 3) if p50["CPU"] else "-")
    return Output(
        tables=[t],
        notes=[
            "Below 1 in 'p50 GPU / CPU', normalising on the GPU is faster for the whole request: the copy carries "
            "uint8 instead of FP16 and the element-wise work runs on the device instead of in numpy.",
        ],
        substitute=Substitute(
            instead_of="a Triton ensemble with its preprocessing model on the CPU or on a GPU",
            used="the same normalisation of the request's uint8 input in numpy before the host-to-device copy, or "
            "on the GPU after copying the raw bytes, in one PyTorch process with the model after it",
            why="Triton with GPU backends cannot be brought to the GPU machine: no registry reaches it and a call "
            "carries 64 MiB",
        ),
    )
