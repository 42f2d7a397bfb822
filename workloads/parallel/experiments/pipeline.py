"""Pipeline parallelism of a 4-layer transformer over two devices (d57.e1, e2, e4, e5): the split checked against
the unsplit stack, latency and throughput against the micro-batch count, memory per device, and data vs model
parallelism. Each experiment starts its own workloads/parallel/pipeline.py run.

On a host with two or more GPUs the ranks are GPUs over NCCL (bf16). On a CPU host they are two CPU processes over
gloo (fp32): the same split, schedule and checks, recorded as a substitute for the two GPUs the curriculum names.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator

from ailab.contract import Column, Context, Output, Params, Series, Skip, Substitute, Table
from workloads.kernels import jsonl
from workloads.parallel.launch import gpu_count, run_worker

CPU_STAND_IN = Substitute(
    instead_of="two GPUs exchanging activations over NCCL",
    used="two CPU processes over gloo, fp32, one thread each",
    why="no multi-GPU machine here; the split, the micro-batch schedule and the correctness check are the same "
    "code, but the timings are of the CPU and gloo, not of GPUs",
)
NOTE = (
    "GPipe-style forward schedule: the batch is cut into M equal micro-batches; stage r runs layers "
    "[2r, 2r+1] of the 4-layer stack on micro-batch i as soon as it arrives and sends the result on. Ideal bubble "
    "= (n-1)/(M+n-1) of each device's time idle. Errors are against the same stack unsplit on one device."
)
View = Literal["split", "micro_batches", "memory", "dp_vs_mp"]


class PipelineParams(Params):
    view: View = Field(description="which question the run answers (the rows and plots it shows)")
    micro: list[int] = Field(default=[1, 2, 4, 8], min_length=1, description="micro-batch counts, each a run")
    ranks: int = Field(default=2, ge=2, le=4, description="pipeline stages = devices (must divide the 4 layers)")

    @field_validator("micro")
    @classmethod
    def _divides_batch(cls, v: list[int]) -> list[int]:
        if bad := [m for m in v if m not in (1, 2, 4, 8)]:
            raise ValueError(f"micro {bad}: allowed 1, 2, 4, 8 (each must divide the batch of 8 or 16 sequences)")
        return v

    @field_validator("ranks")
    @classmethod
    def _divides_layers(cls, v: int) -> int:
        if 4 % v:
            raise ValueError(f"ranks {v}: allowed 2 or 4 (the stages must split the 4 layers evenly)")
        return v


def pipeline(ctx: Context, p: PipelineParams) -> Output:
    """Run the pipeline/data-parallel worker and show the rows the view asks for."""
    args = ["--ranks", str(p.ranks), "--micro", ",".join(map(str, p.micro))]
    out = Output(notes=[NOTE])
    if ctx.device == "cuda":
        if (found := gpu_count()) < p.ranks:
            raise Skip(f"needs {p.ranks} or more GPUs (found {found})")
    else:
        args.append("--cpu")
        out.substitute = CPU_STAND_IN
    if ctx.quick:
        args.append("--quick")
    parsed = run_worker("workloads.parallel.pipeline", args)
    pp = [r for r in parsed.records if r.table.startswith("pipeline parallel")]
    dp = [r for r in parsed.records if r.table.startswith("data parallel")]
    if not pp or not dp:
        raise RuntimeError("workloads.parallel.pipeline printed no pipeline or data-parallel rows")
    tables = {t.name: t for t in jsonl.tables(pp + dp)}
    pp_table = tables[pp[0].table]
    if p.view == "split":
        out.tables.append(_columns(pp_table, ["devices", "micro-batches", "weights per device", "max rel. error"]))
    elif p.view == "micro_batches":
        out.tables.append(pp_table)
        lat = Series("latency vs micro-batches", x=Column("micro-batches", ""), y=Column("latency", "ms"), log_x=True)
        thr = Series(
            "throughput vs micro-batches", x=Column("micro-batches", ""), y=Column("throughput", "tokens/s"), log_x=True
        )
        for r in pp:
            lat.point("pipeline", r.get("micro-batches"), r.get("latency"))
            thr.point("pipeline", r.get("micro-batches"), r.get("throughput"))
        out.series += [lat, thr]
    elif p.view == "memory":
        keep = ["scheme", "devices", "weights per device", "peak memory per device"]
        out.tables.append(_columns(tables[dp[0].table], keep))
        if ctx.device != "cuda":
            out.notes.append("Peak memory per device is a CUDA allocator figure: not measurable on the CPU path.")
    else:
        out.tables.append(tables[dp[0].table])
    return out


def _columns(t: Table, names: list[str]) -> Table:
    idx = [i for i, c in enumerate(t.columns) if c.name in names]
    sub = Table(name=t.name, columns=[t.columns[i] for i in idx], caption=t.caption)
    for row in t.rows:
        sub.add(*(row[i] for i in idx))
    return sub
