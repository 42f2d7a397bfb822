"""Inference spread over the GPUs of one host (d51.e1, d51.e5, d56.e3): one worker process per GPU behind the lab's
dispatcher (workloads/parallel/multigpu.py), measured only where two or more GPUs exist.

The curriculum configures a Triton `instance_group` with `gpus: [0, 1]`; the lent GPU machines have no tritonserver
(nothing can be installed there), so the same placement (one model instance per GPU, a scheduler choosing one per
request) is built from worker processes and recorded as a substitute.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from ailab.contract import Column, Context, Output, Params, Series, Skip, Substitute, Table
from workloads.parallel.launch import gpu_count

INSTANCE_GROUP = Substitute(
    instead_of="a Triton instance_group with one instance on each GPU (gpus: [0, 1])",
    used="one worker process per GPU (CUDA_VISIBLE_DEVICES) behind the lab's dispatcher (workloads/sched)",
    why="the lent GPU machines have no tritonserver and nothing can be installed on them",
)
Policy = Literal["round_robin", "least_load", "least_time", "p2c"]


class SpreadParams(Params):
    concurrency: list[int] = Field(default=[1, 2, 4, 8, 16, 32], min_length=1, description="client threads, each a run")
    seconds: float = Field(default=10.0, gt=0, le=600, description="measured window per run, s")
    policy: Policy = "least_load"
    dim: int = Field(default=4096, ge=8, le=32768, description="width of the bf16 MLP stack each worker holds")
    layers: int = Field(default=8, ge=1, le=64)
    batch: int = Field(default=16, ge=1, le=4096, description="rows per request")


class LongRunParams(Params):
    concurrency: int = Field(default=16, ge=1, le=1024)
    duration_s: float = Field(default=1800.0, ge=10, le=86400, description="the whole run, s")
    window_s: float = Field(default=30.0, ge=1, le=3600, description="reporting window, s")
    policy: Policy = "least_load"
    dim: int = Field(default=4096, ge=8, le=32768)
    layers: int = Field(default=8, ge=1, le=64)
    batch: int = Field(default=16, ge=1, le=4096)
    max_p99_drift: float = Field(default=1.5, ge=1, le=100, description="p99 of the last quarter / first quarter")
    max_errors: int = Field(default=0, ge=0, description="failed requests allowed over the whole run")


def _gpus(ctx: Context) -> int:
    n = gpu_count() if ctx.device == "cuda" else 0
    if n < 2:
        raise Skip(f"needs 2 or more GPUs (found {n}{'' if ctx.device == 'cuda' else ', device cpu'})")
    return n


def spread(ctx: Context, p: SpreadParams) -> Output:
    """d51.e1 / d51.e5: throughput and latency against client concurrency on one GPU and on every GPU of the host,
    the requests each GPU served, and the scaling from one GPU to all."""
    from workloads.parallel.multigpu import Pool, Shape, closed_loop

    n = _gpus(ctx)
    shape = Shape(p.dim, p.layers, p.batch)
    t = Table.of(
        "workers per GPU",
        [
            ("GPUs", ""),
            ("concurrency", ""),
            ("requests/s", "req/s"),
            ("p50", "ms"),
            ("p99", "ms"),
            ("errors", ""),
            ("requests per GPU", ""),
            ("vs 1 GPU", "x"),
        ],
        caption=f"one worker per GPU, {p.policy} dispatch, bf16 MLP {p.layers}x{p.dim}, {p.batch} rows per request",
    )
    thr = Series("throughput vs concurrency", x=Column("concurrency", ""), y=Column("throughput", "req/s"), log_x=True)
    p99 = Series("p99 latency vs concurrency", x=Column("concurrency", ""), y=Column("p99", "ms"), log_x=True)
    one: dict[int, float] = {}
    names: list[str] = []
    for gpus in (1, n):
        with Pool(gpus, "cuda", shape) as pool:
            names = [w.name for w in pool.workers]
            for c in p.concurrency:
                s = closed_loop(pool, c, p.seconds, p.policy).summary()
                if gpus == 1:
                    one[c] = s["throughput"]
                vs = round(s["throughput"] / one[c], 2) if one.get(c) else None
                t.add(gpus, c, s["throughput"], s["p50_ms"], s["p99_ms"], s["errors"], str(s["per_worker"]), vs)
                thr.point(f"{gpus} GPU(s)", c, s["throughput"])
                p99.point(f"{gpus} GPU(s)", c, s["p99_ms"])
    return Output(
        tables=[t],
        series=[thr, p99],
        notes=[f"GPUs: {', '.join(names)}; NCCL is not used (the workers share nothing)"],
        substitute=INSTANCE_GROUP,
    )


def long_run(ctx: Context, p: LongRunParams) -> Output:
    """d56.e3: a long closed-loop run over every GPU: per-window p50/p99 and errors, each GPU's utilisation and
    memory from NVML, and PASS/FAIL against the thresholds."""
    from workloads.parallel.multigpu import Pool, Shape, closed_loop, gpu_utilisation

    n = _gpus(ctx)
    duration = min(p.duration_s, 60.0) if ctx.quick else p.duration_s
    with Pool(n, "cuda", Shape(p.dim, p.layers, p.batch)) as pool:
        run = closed_loop(pool, p.concurrency, duration, p.policy, window_s=p.window_s, sample=gpu_utilisation())
    cols = list(run.windows[0]) if run.windows else []
    win = Table.of("windows", [(c, "ms" if c.endswith("_ms") else "") for c in cols])
    for w in run.windows:
        win.add(*(w[c] for c in cols))
    q = max(1, len(run.windows) // 4)
    first = [w["p99_ms"] for w in run.windows[:q] if w["p99_ms"] is not None]
    last = [w["p99_ms"] for w in run.windows[-q:] if w["p99_ms"] is not None]
    drift = round(max(last) / max(first), 3) if first and last else None
    verdict = Table.of("verdict", [("check", ""), ("value", ""), ("threshold", ""), ("result", "")])
    verdict.add("failed requests", run.errors, p.max_errors, "PASS" if run.errors <= p.max_errors else "FAIL")
    ok = drift is not None and drift <= p.max_p99_drift
    verdict.add("p99 drift (last quarter / first quarter)", drift, p.max_p99_drift, "PASS" if ok else "FAIL")
    lat = Series("p99 per window", x=Column("time", "s"), y=Column("p99", "ms"))
    util = Series("GPU utilisation per window", x=Column("time", "s"), y=Column("utilisation", "%"))
    for w in run.windows:
        lat.point("p99", w["until_s"], w["p99_ms"])
        for i in range(n):
            util.point(f"GPU {i}", w["until_s"], w.get(f"gpu{i}_util_pct"))
    s = run.summary()
    return Output(
        tables=[verdict, win],
        series=[lat, util],
        notes=[
            f"{s['requests']} requests over {run.seconds:.0f} s at concurrency {p.concurrency}; "
            f"per GPU {s['per_worker']}"
        ],
        substitute=INSTANCE_GROUP,
    )
