"""d24 runners: NCCL collectives on every local GPU (workloads/parallel/nccl_bench.py run as a subprocess)."""

from __future__ import annotations

import functools
import os
import subprocess
import sys

from ailab.contract import Context, Output, Skip
from ailab.contract.paths import REPO_ROOT
from workloads.kernels import jsonl

TABLE = "NCCL collectives vs message size"


def run_worker(module: str, args: list[str], env: dict[str, str] | None = None) -> jsonl.Parsed:
    """Run a multi-GPU worker module (one process per GPU inside) with NVLink multicast off; its exit code 3 means
    "not enough GPUs here" and becomes a skip."""
    env = {**os.environ, **(env or {}), "NCCL_NVLS_ENABLE": "0", "TORCH_SYMM_MEM_DISABLE_MULTICAST": "1"}
    cmd = [sys.executable, "-m", module, *args]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=REPO_ROOT, timeout=900, check=False)
    if proc.returncode == 3:
        raise Skip(proc.stderr.strip())
    if proc.returncode != 0:
        raise RuntimeError(f"{module} exited {proc.returncode}: {proc.stderr[-2000:]}")
    return jsonl.parse(proc.stdout)


@functools.cache
def _run(quick: bool, path: str) -> jsonl.Parsed:
    """One nccl_bench run per path, shared by the d24 experiments: 'default' (all ops + overlap) lets NCCL pick
    its transport; 'no-p2p' (all-reduce only) forces transfers through host memory."""
    ops, overlap = ("all_reduce,all_gather,reduce_scatter", True) if path == "default" else ("all_reduce", False)
    # no-p2p: no NVLink/PCIe peer-to-peer, transfers go through shared host memory
    env = {"NCCL_P2P_DISABLE": "1"} if path == "no-p2p" else {}
    args = ["--ops", ops, *(["--quick"] if quick else []), *([] if overlap else ["--no-overlap"])]
    return run_worker("workloads.parallel.nccl_bench", args, env)


def collectives(ctx: Context) -> Output:
    """NCCL all-reduce / all-gather / reduce-scatter over sizes: time, algbw, busbw (nccl-tests definitions)."""
    if ctx.device != "cuda":
        raise Skip("needs CUDA GPUs")
    ops = ctx.param("ops", ["all_reduce", "all_gather", "reduce_scatter"])
    paths = ctx.param("paths", ["default"])
    out = Output()
    for path in paths:
        parsed = _run(ctx.quick, path)
        recs = [r for r in parsed.rows(table=TABLE) if r.get("op") in ops]
        for r in recs:
            if r.columns[0][0] == "transport":  # cached rows already labelled by an earlier experiment
                continue
            r.columns.insert(0, ("transport", ""))
            r.row.insert(0, "NCCL default (NVLink P2P)" if path == "default" else "NCCL_P2P_DISABLE=1 (host memory)")
        out.tables += jsonl.tables(recs)
        if ctx.param("plot", True):
            for y in ("busbw", "time (NCCL via CuPy)"):
                out.series.append(
                    jsonl.series(recs, f"{y} vs size ({path})", "size", y, "op", log_x=True, log_y=y.startswith("time"))
                )
        if ctx.param("overlap", False):
            out.tables += jsonl.tables(parsed.rows(case="overlap"))
    if len(out.tables) > 1 and all(t.name == TABLE for t in out.tables):
        first = out.tables[0]
        for t in out.tables[1:]:
            first.rows += t.rows
        out.tables = [first]
    out.notes.append(
        "busbw as nccl-tests defines it: all-reduce algbw x 2(n-1)/n, all-gather and reduce-scatter algbw x (n-1)/n; "
        "time is the slowest rank's median. NCCL is called directly through CuPy and, as the check, through "
        "torch.distributed on the same sizes. NVLink multicast (NVLS) is off."
    )
    return out
