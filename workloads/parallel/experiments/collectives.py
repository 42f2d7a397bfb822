"""NCCL collectives on the GPUs of one host (d24): workloads/parallel/nccl_bench.py run as a subprocess, one
process per GPU inside. Every experiment starts its own run(s) with exactly what it asks for, so no two
experiments show the same measured rows.

- `collectives`: the chosen ops over message sizes, optionally also on a second transport path
  (NCCL_P2P_DISABLE=1) and with the communication/compute overlap test: d24.e1 (the all-reduce demo), e3, e4, e5.
- `allreduce_scaling`: the all-reduce at each GPU count the host has out of 2/4/8: d24.e2.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field

from ailab.contract import Context, Output, Params, Skip, Substitute, Table
from workloads.kernels import jsonl
from workloads.parallel.launch import gpu_count, run_worker

TABLE = "NCCL collectives vs message size"
Op = Literal["all_reduce", "all_gather", "reduce_scatter"]  # workloads.parallel.busbw.OPS (a test keeps them equal)
TransportPath = Literal["default", "no-p2p"]
TRANSPORT = {"default": "NCCL default (NVLink P2P)", "no-p2p": "NCCL_P2P_DISABLE=1 (host memory)"}
# d24.e3 asks NVLink vs PCIe; what NCCL can be made to use instead of NVLink is its host-memory path
NO_P2P = Substitute(
    instead_of="GPU-to-GPU transfers over PCIe (peer-to-peer)",
    used="NCCL_P2P_DISABLE=1: NCCL's shared-memory transport, staged through host memory over each GPU's PCIe link",
    why="on NVLink-connected GPUs CUDA peer access takes NVLink, and NCCL treats NVLink and PCIe peer-to-peer alike: "
    "no setting routes its P2P transport over PCIe while NVLink is there",
)
NOTE = (
    "busbw as nccl-tests defines it: all-reduce algbw x 2(n-1)/n, all-gather and reduce-scatter algbw x (n-1)/n; "
    "time is the slowest rank's median. NCCL is called directly through CuPy and, as the check, through "
    "torch.distributed on the same sizes. NVLink multicast (NVLS) is off."
)


class CollectivesParams(Params):
    ops: list[Op] = Field(default=["all_reduce", "all_gather", "reduce_scatter"], min_length=1)
    paths: list[TransportPath] = Field(
        default=["default"], min_length=1, description="default: NCCL picks (NVLink P2P); no-p2p: via host memory"
    )
    overlap: bool = Field(default=False, description="also time an all-reduce overlapped with matmuls (d24.e4)")
    plot: bool = Field(default=True, description="busbw and time vs size plots")


class ScalingParams(Params):
    gpus: list[Annotated[int, Field(ge=2, le=64)]] = Field(
        default=[2, 4, 8], min_length=1, description="GPU counts; those above the host's are noted, not run"
    )
    plot: bool = True


def _run(quick: bool, path: str, ops: list[str], overlap: bool, ranks: int | None = None) -> jsonl.Parsed:
    """One nccl_bench run: `ops` over sizes on `ranks` GPUs (default all); 'no-p2p' forces transfers through host
    memory (no NVLink/PCIe peer-to-peer)."""
    env = {"NCCL_P2P_DISABLE": "1"} if path == "no-p2p" else {}
    args = ["--ops", ",".join(ops), *(["--quick"] if quick else []), *([] if overlap else ["--no-overlap"])]
    args += ["--ranks", str(ranks)] if ranks else []
    return run_worker("workloads.parallel.nccl_bench", args, env)


def collectives(ctx: Context, p: CollectivesParams) -> Output:
    """NCCL all-reduce / all-gather / reduce-scatter over sizes: time, algbw, busbw (nccl-tests definitions)."""
    if ctx.device != "cuda":
        raise Skip("needs CUDA GPUs")
    out = Output()
    recs: list[jsonl.Record] = []
    overlap: list[jsonl.Record] = []
    for i, path in enumerate(p.paths):
        parsed = _run(ctx.quick, path, list(p.ops), p.overlap and i == 0)
        mine = [r for r in parsed.rows(table=TABLE) if r.get("op") in p.ops]
        for r in mine:
            r.columns.insert(0, ("transport", ""))
            r.row.insert(0, TRANSPORT[path])
        recs += mine
        if p.plot:
            for y in ("busbw", "time (NCCL via CuPy)"):
                out.series.append(
                    jsonl.series(mine, f"{y} vs size ({path})", "size", y, "op", log_x=True, log_y=y.startswith("time"))
                )
        if p.overlap and i == 0:
            overlap = parsed.rows(case="overlap")
    out.tables = jsonl.tables(recs) + jsonl.tables(overlap)
    out.notes.append(NOTE)
    if "no-p2p" in p.paths:
        out.substitute = NO_P2P
    return out


def allreduce_scaling(ctx: Context, p: ScalingParams) -> Output:
    """d24.e2: the all-reduce over sizes on 2, 4, 8 GPUs (each count its own run): latency and busbw by GPU count."""
    if ctx.device != "cuda":
        raise Skip("needs CUDA GPUs")
    have = gpu_count()
    counts = sorted({k for k in p.gpus if k <= have})
    if not counts:
        raise Skip(f"needs {min(p.gpus)} or more GPUs; this host has {have}")
    recs: list[jsonl.Record] = []
    for k in counts:
        recs += [r for r in _run(ctx.quick, "default", ["all_reduce"], False, ranks=k).rows(table=TABLE)]
        ctx.log(f"all_reduce on {k} GPUs: {sum(r.get('GPUs') == k for r in recs)} sizes")
    out = Output(tables=jsonl.tables(recs))
    summary = Table.of(
        "all-reduce latency and bandwidth by GPU count",
        [("GPUs", ""), ("smallest size", "B"), ("time at smallest size", "us"), ("largest size", "B"),
         ("busbw at largest size", "GB/s"), ("all correct", "")],
        caption="latency = the slowest rank's median time of the smallest message (NCCL via CuPy); bandwidth = "
        "busbw of the largest; each GPU count is its own nccl_bench run on GPUs 0..n-1",
    )  # fmt: skip
    for k in counts:
        rows = sorted((r for r in recs if r.get("GPUs") == k), key=lambda r: r.get("size"))
        lo, hi = rows[0], rows[-1]
        summary.add(k, lo.get("size"), lo.get("time (NCCL via CuPy)"), hi.get("size"), hi.get("busbw"),
                    all(r.get("correct") for r in rows))  # fmt: skip
    out.tables.insert(0, summary)
    if p.plot:
        out.series.append(jsonl.series(recs, "all-reduce time vs size by GPU count", "size", "time (NCCL via CuPy)",
                                       "GPUs", log_x=True, log_y=True))  # fmt: skip
        out.series.append(jsonl.series(recs, "all-reduce busbw vs size by GPU count", "size", "busbw", "GPUs",
                                       log_x=True))  # fmt: skip
    if missing := sorted({k for k in p.gpus if k > have}):
        out.notes.append(f"not measured: {', '.join(map(str, missing))} GPUs (this host has {have})")
    out.notes.append(NOTE)
    return out
