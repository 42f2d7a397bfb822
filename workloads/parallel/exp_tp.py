"""d80 runners: tensor and sequence parallelism of a transformer stack on every local GPU
(workloads/parallel/tp.py run once as a subprocess, shared by the four experiments)."""

from __future__ import annotations

import functools

from ailab.contract import Column, Context, Output, Series, Skip, Table
from workloads.kernels import jsonl
from workloads.parallel.experiments import run_worker
from workloads.parallel.tp_sim import simulate

TABLE = "transformer stack forward: one device vs tensor / sequence parallel"
MODES = ("1 device (reference)", "tensor parallel", "tensor + sequence parallel")


@functools.cache
def _run(quick: bool, ranks: int | None) -> jsonl.Parsed:
    args = [*(["--quick"] if quick else []), *(["--ranks", str(ranks)] if ranks else [])]
    return run_worker("workloads.parallel.tp", args)


def _gpu_count() -> int:
    import torch

    return torch.cuda.device_count()


def parallel(ctx: Context) -> Output:
    """Rows of the chosen modes (params.modes); params.breakdown adds the communication/computation bar plot."""
    if ctx.device != "cuda":
        raise Skip("needs CUDA GPUs (at least 2)")
    modes = ctx.param("modes", list(MODES))
    if bad := [m for m in modes if m not in MODES]:
        raise ValueError(f"params.modes {bad}: allowed values are {', '.join(MODES)}")
    # 2-way (the curriculum's) and every GPU of the host; the 1-device reference row once
    recs = [r for r in _run(ctx.quick, 2).rows(table=TABLE) if r.get("mode") in modes]
    if _gpu_count() > 2:
        more = _run(ctx.quick, None).rows(table=TABLE)
        recs += [r for r in more if r.get("mode") in modes and r.get("GPUs") > 1]
    if not recs:
        raise RuntimeError("workloads.parallel.tp printed no rows")
    out = Output(tables=jsonl.tables(recs, caption=ctx.param("caption", "")))
    if ctx.param("breakdown", False):
        by_shape: dict[tuple[int, int], Series] = {}
        for r in recs:
            b, sq = r.get("batch"), r.get("seq")
            if (b, sq) not in by_shape:
                by_shape[(b, sq)] = Series(
                    name=f"communication vs computation, batch {b} x seq {sq}",
                    x=Column("mode"),
                    y=Column("time per forward", "ms"),
                    kind="bar",
                )
            label = f"{r.get('mode')}, {r.get('GPUs')} GPU"
            for part in ("communication", "computation"):
                by_shape[(b, sq)].point(part, label, r.get(part))
        out.series += by_shape.values()
    out.notes.append(
        "Megatron-style: Q/K/V and fc1 split by columns (whole heads / hidden units per GPU), out-projection and fc2 "
        "by rows; TP sums each block's partial output with an all-reduce (2 per layer), TP+SP replaces each with "
        "an all-gather of the sequence before and a reduce-scatter after the block. Communication = the "
        "collectives' CUDA-event time on the compute stream (it includes waiting for the slowest rank); "
        "computation = the rest. Errors are against the same stack unsharded on GPU 0 (bf16)."
    )
    return out


def simulated(ctx: Context) -> Output:
    """d57.e3: an MLP block's matmuls split into p partitions in one process (CPU): work, memory and the all-reduce
    volume per partition, and the summed partial outputs checked against the unsplit block in float64."""
    tokens, hidden = int(ctx.param("tokens", 512)), int(ctx.param("hidden", 1024))
    parts = simulate(tokens, hidden, list(ctx.param("partitions", [1, 2, 4, 8])), int(ctx.param("reps", 5)))
    t = Table.of(
        f"tensor-parallel split of Y = gelu(X W1) W2, X {tokens} x {hidden}, W1 {hidden} x {4 * hidden} (fp32)",
        [
            ("partitions", ""),
            ("GFLOP per partition", ""),
            ("weights per partition", "MiB"),
            ("all-reduce sent per GPU", "MiB"),
            ("time of one partition", "ms"),
            ("speedup if partitions ran at once", "x"),
            ("rel. error vs unsplit (float64)", ""),
        ],
        caption="partitions run one after another on this CPU; 'speedup if partitions ran at once' = time of the "
        "unsplit block / time of one partition, i.e. before any communication cost",
    )
    base = parts[0].time_per_partition_ms if parts[0].partitions == 1 else float("nan")
    for p in parts:
        t.add(p.partitions, p.flops_per_partition / 1e9, p.weight_bytes_per_partition / 2**20,
              p.allreduce_bytes_per_gpu / 2**20, p.time_per_partition_ms, base / p.time_per_partition_ms,
              p.rel_error)  # fmt: skip
    s = Series(name="time of one partition vs partitions", x=Column("partitions"), y=Column("time", "ms"))
    for p in parts:
        s.point("one partition", p.partitions, p.time_per_partition_ms)
    return Output(
        tables=[t],
        series=[s],
        notes=[
            "W1 is cut by columns and W2 by rows, so each partition applies gelu to its own columns and needs no "
            "communication inside the block; only the output partials are summed (one all-reduce per block). "
            "The measured multi-GPU version of this split is d80 (workloads/parallel/tp.py)."
        ],
    )
