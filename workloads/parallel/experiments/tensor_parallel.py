"""Tensor and sequence parallelism of a transformer stack (d80, on the GPUs of one host) and the tensor-parallel
split of an MLP block simulated in one process (d57.e3).

d80.e1-e3 each start their own workloads/parallel/tp.py run(s) with the modes and GPU counts they ask for (the
1-device reference row comes with every run); d80.e4 plots the communication/computation split of d80.e3's
stored rows and says so (derived_from), because "the parallel runs" it breaks down are those.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal, get_args

from pydantic import Field, field_validator, model_validator

from ailab.contract import Column, Context, Output, Params, Series, Skip, Table
from workloads.kernels import jsonl
from workloads.parallel.launch import gpu_count, run_worker

TABLE = "transformer stack forward: one device vs tensor / sequence parallel"
REFERENCE = "1 device (reference)"
Mode = Literal["1 device (reference)", "tensor parallel", "tensor + sequence parallel"]
WORKER_MODE = {"tensor parallel": "tp", "tensor + sequence parallel": "sp"}  # tp.py --modes keys
HEADS = 16  # heads of the quick shape (the full shapes have 32): a GPU count must divide both, and the sequences
NOTE = (
    "Megatron-style: Q/K/V and fc1 split by columns (whole heads / hidden units per GPU), out-projection and fc2 "
    "by rows; TP sums each block's partial output with an all-reduce (2 per layer), TP+SP replaces each with "
    "an all-gather of the sequence before and a reduce-scatter after the block. Communication = the "
    "collectives' CUDA-event time on the compute stream (it includes waiting for the slowest rank); "
    "computation = the rest. Errors are against the same stack unsharded on GPU 0 (bf16)."
)


class ParallelParams(Params):
    modes: list[Mode] = Field(default=list(get_args(Mode)), min_length=1, description="rows to run and show")
    gpus: list[int | Literal["all"]] = Field(
        default=[2, "all"], min_length=1, description="GPU counts, one tp.py run each; 'all' = every GPU of the host"
    )
    breakdown: bool = Field(default=False, description="also plot communication vs computation per mode")
    caption: str = ""

    @field_validator("gpus", mode="before")
    @classmethod
    def _gpus_split_the_heads(cls, v: Any) -> Any:
        ok = {k for k in range(2, HEADS + 1) if HEADS % k == 0}
        if isinstance(v, list) and (bad := [k for k in v if k != "all" and (isinstance(k, bool) or k not in ok)]):
            allowed = ", ".join(map(str, sorted(ok)))
            raise ValueError(f"gpus {bad}: allowed {allowed} (a count must divide {HEADS} heads) or 'all'")
        return v

    @model_validator(mode="after")
    def _one_parallel_mode(self) -> ParallelParams:
        if not set(self.modes) - {REFERENCE}:
            raise ValueError(f"modes {self.modes}: allowed lists with 'tensor parallel' and/or 'tensor + sequence "
                             "parallel' (the reference row alone measures no parallelism)")  # fmt: skip
        return self


class BreakdownParams(Params):
    source: Literal["d80.e1", "d80.e2", "d80.e3"] = Field(
        default="d80.e3", description="the stored parallel runs whose communication/computation split is plotted"
    )


class SimulatedParams(Params):
    tokens: int = Field(default=512, ge=1, le=65536)
    hidden: int = Field(default=1024, ge=1, le=16384)
    partitions: list[Annotated[int, Field(ge=1)]] = Field(default=[1, 2, 4, 8], min_length=1)
    reps: int = Field(default=5, ge=1, le=1000)

    @model_validator(mode="after")
    def _partitions_divide_ffn(self) -> SimulatedParams:
        ffn = 4 * self.hidden
        if bad := [n for n in self.partitions if ffn % n]:
            raise ValueError(f"partitions {bad}: allowed integers >= 1 dividing 4 x hidden = {ffn}")
        return self


def _counts(p: ParallelParams, have: int) -> tuple[list[int], list[str]]:
    """GPU counts to run on this host (in order, once each) and notes for those it cannot run."""
    counts, notes = [], []
    for k in p.gpus:
        n = have if k == "all" else k
        if n < 2 or n > have:
            notes.append(f"not measured: {k} GPUs (this host has {have})")
        elif HEADS % n:
            notes.append(f"not measured: {k} = {n} GPUs (the {HEADS} heads of the quick shape do not split {n} ways)")
        elif n not in counts:
            counts.append(n)
    return counts, notes


def _breakdown(recs: list[dict[str, Any]]) -> list[Series]:
    """One bar plot per (batch, seq): communication and computation time of each mode and GPU count."""
    by_shape: dict[tuple[Any, Any], Series] = {}
    for r in recs:
        b, sq = r["batch"], r["seq"]
        if (b, sq) not in by_shape:
            by_shape[(b, sq)] = Series(
                name=f"communication vs computation, batch {b} x seq {sq}",
                x=Column("mode"),
                y=Column("time per forward", "ms"),
                kind="bar",
            )
        label = f"{r['mode']}, {r['GPUs']} GPU"
        for part in ("communication", "computation"):
            by_shape[(b, sq)].point(part, label, r[part])
    return list(by_shape.values())


def parallel(ctx: Context, p: ParallelParams) -> Output:
    """d80.e1-e3: the chosen modes at the chosen GPU counts, each count its own tp.py run, with the 1-device
    reference row of the first run; params.breakdown adds the communication/computation bar plot."""
    if ctx.device != "cuda":
        raise Skip("needs CUDA GPUs (at least 2)")
    counts, notes = _counts(p, gpu_count())
    if not counts:
        raise Skip("; ".join(notes) or "needs 2 or more GPUs")
    worker_modes = ",".join(WORKER_MODE[m] for m in p.modes if m != REFERENCE)
    recs: list[jsonl.Record] = []
    for i, n in enumerate(counts):
        rows = run_worker(
            "workloads.parallel.tp", ["--ranks", str(n), "--modes", worker_modes, *(["--quick"] if ctx.quick else [])]
        ).rows(table=TABLE)
        recs += [r for r in rows if r.get("mode") in p.modes and (i == 0 or r.get("GPUs") > 1)]
    if not recs:
        raise RuntimeError("workloads.parallel.tp printed no rows")
    out = Output(tables=jsonl.tables(recs, caption=p.caption), notes=notes)
    if p.breakdown:
        out.series += _breakdown([{c: r.get(c) for c in ("mode", "GPUs", "batch", "seq", "communication",
                                                         "computation")} for r in recs])  # fmt: skip
    out.notes.append(NOTE)
    return out


def comm_compute_breakdown(ctx: Context, p: BreakdownParams) -> Output:
    """d80.e4: the communication/computation split of the stored parallel runs (d80.e3's by default), plotted."""
    rec = ctx.derived_rows(p.source)
    t = next((t for t in rec.get("tables", []) if t["name"] == TABLE), None)
    if t is None:
        raise RuntimeError(f"{p.source}: stored result has no table {TABLE!r}")
    names = [c["name"] for c in t["columns"]]
    table = Table(TABLE, [Column(c["name"], c.get("unit", "")) for c in t["columns"]], [list(r) for r in t["rows"]],
                  t.get("caption", ""))  # fmt: skip
    rows = [dict(zip(names, r, strict=True)) for r in t["rows"]]
    return Output(
        tables=[table],
        series=_breakdown(rows),
        notes=[f"Re-presents the rows {p.source} measured (no new run): the split of each forward's time into the "
               "collectives' time and the rest.", NOTE],
        derived_from=[p.source],
    )  # fmt: skip


def simulated(ctx: Context, p: SimulatedParams) -> Output:
    """d57.e3: an MLP block's matmuls split into p partitions in one process (CPU): work, memory and the all-reduce
    volume per partition, and the summed partial outputs checked against the unsplit block in float64."""
    from workloads.parallel.tp_sim import simulate  # torch: loaded when the runner runs, not with the catalogue

    tokens, hidden = p.tokens, p.hidden
    parts = simulate(tokens, hidden, list(p.partitions), p.reps)
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
    for s in parts:
        t.add(s.partitions, s.flops_per_partition / 1e9, s.weight_bytes_per_partition / 2**20,
              s.allreduce_bytes_per_gpu / 2**20, s.time_per_partition_ms, base / s.time_per_partition_ms,
              s.rel_error)  # fmt: skip
    line = Series(name="time of one partition vs partitions", x=Column("partitions"), y=Column("time", "ms"))
    for s in parts:
        line.point("one partition", s.partitions, s.time_per_partition_ms)
    return Output(
        tables=[t],
        series=[line],
        notes=[
            "W1 is cut by columns and W2 by rows, so each partition applies gelu to its own columns and needs no "
            "communication inside the block; only the output partials are summed (one all-reduce per block). "
            "The measured multi-GPU version of this split is d80 (workloads/parallel/tp.py)."
        ],
    )
