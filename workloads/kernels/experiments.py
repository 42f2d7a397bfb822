"""Runners of the CUDA experiments (d08-d11, d23, d37, d64, d65): parameters come from bindings/kernels.yaml."""

from __future__ import annotations

import math
import re
from typing import Any

from ailab.contract import Context, Output, Skip, Table
from workloads.kernels import jsonl, targets, tools


def _need_cuda(ctx: Context) -> None:
    if ctx.device != "cuda":
        raise Skip("needs a CUDA GPU (run with --device cuda on a GPU host)")


def _args(ctx: Context) -> tuple[str, ...]:
    return ("--quick",) if ctx.quick else ()


def bench(ctx: Context) -> Output:
    """Rows of the named harness cases as tables, optional plots, ratio targets and compiler resource usage."""
    _need_cuda(ctx)
    binary = ctx.param("binary")
    cases: list[str] = ctx.param("cases") or []
    if not binary or not cases:
        raise ValueError("params binary and cases are required (see ailab/curriculum/bindings/kernels.yaml)")
    parsed = tools.run_bench(binary, _args(ctx))
    recs = [r for r in parsed.records if r.case in cases]
    if kernels := ctx.param("kernels"):
        recs = [r for r in recs if r.get("kernel") is None or r.get("kernel") in kernels]
    if n := ctx.param("only_n"):
        sizes = {r.get("N") for r in recs} - {None}
        keep = set(n) & sizes or {max(sizes)}  # --quick sweeps stop below the named size: keep the largest
        recs = [r for r in recs if r.get("N") is None or r.get("N") in keep]
    if not recs:
        raise RuntimeError(f"{binary}: no rows for cases {cases}")
    out = Output(tables=jsonl.tables(recs, caption=ctx.param("caption", "")))
    for spec in ctx.param("series") or []:
        rows = [r for r in recs if r.table == spec["table"]]
        out.series.append(
            jsonl.series(
                rows,
                spec.get("name", spec["table"]),
                spec["x"],
                spec["y"],
                spec["group"],
                spec.get("log_x", False),
                spec.get("log_y", False),
            )
        )
    for c in cases:
        out.notes += parsed.notes.get(c, [])
    for name in ctx.param("targets") or []:
        out.notes.append(targets.check(name, parsed))
    if res := ctx.param("resources"):
        out.tables.append(resources_table(res["binary"], res["match"]))
    return out


def resources_table(binary: str, match: list[str]) -> Table:
    """Registers, stack, local and shared memory per kernel from the compiler's resource report."""
    t = Table.of(
        "compiler resource usage (cuobjdump -res-usage)",
        [("kernel (mangled)", ""), ("registers", "per thread"), ("stack", "B"), ("local", "B"), ("shared", "B")],
    )
    for fn, r in sorted(tools.resource_usage(binary).items()):
        if any(m in fn for m in match):
            t.add(fn, r.get("REG", 0), r.get("STACK", 0), r.get("LOCAL", 0), r.get("SHARED", 0))
    return t


def sanitizer(ctx: Context) -> Output:
    """d08.e2: an out-of-bounds vector_add run plain (silent) and under compute-sanitizer memcheck (caught)."""
    _need_cuda(ctx)
    t = Table.of(
        "out-of-bounds writes: plain run vs compute-sanitizer memcheck",
        [("kernel", ""), ("run", ""), ("exit code", ""), ("invalid accesses reported", ""), ("summary", "")],
    )
    for fixed in (False, True):
        plain, checked = tools.sanitize(fixed)
        t.add(plain.kernel, "plain", plain.exit_code, math.nan, plain.summary)
        t.add(checked.kernel, "compute-sanitizer memcheck", checked.exit_code, checked.errors, checked.summary)
    return Output(
        tables=[t],
        notes=["1000 elements, 4 blocks of 256 threads: 24 threads of the unguarded kernel write past the end."],
    )


def profile(ctx: Context) -> Output:
    """ncu (--clock-control none) metrics of the kernels matching `kernel_regex`, one launch each."""
    _need_cuda(ctx)
    args = (*_args(ctx), *(("--case", ctx.param("case")) if ctx.param("case") else ()))
    rows = tools.ncu(ctx.param("binary"), args, ctx.param("kernel_regex"), int(ctx.param("launch_count", 40)))
    if not rows:
        raise RuntimeError(f"ncu profiled no kernel matching {ctx.param('kernel_regex')!r}")
    cols = [("launch", ""), ("kernel", ""), ("grid", ""), ("block", "")]
    cols += [(label, unit) for _, label, unit in tools.NCU_METRICS]
    cols.append(("sectors per load request", ""))
    t = Table.of(f"ncu profile ({ctx.param('binary')}, kernels /{ctx.param('kernel_regex')}/)", cols)
    for r in rows:
        vals = [tools.ncu_number(r.get(m)) for m, _, _ in tools.NCU_METRICS]
        sectors, requests = vals[-3], vals[-2]
        name = re.sub(r"\(.*", "", r.get("Kernel Name", "?"))[:60]
        t.add(
            r.get("ID", ""),
            name,
            r.get("Grid Size", ""),
            r.get("Block Size", ""),
            *vals,
            sectors / requests if requests else math.nan,
        )
    return Output(tables=[t], notes=["Profiled with ncu --clock-control none: the card runs at its own clocks."])


def describe(params: dict[str, Any]) -> str:
    """One line naming what a bench binding runs (for docs and `lab list`)."""
    return f"{params.get('binary')} cases {', '.join(params.get('cases', []))}"


def derived_gemm(ctx: Context) -> Output:
    """Rows of another experiment's stored GEMM sweep at one size, re-presented (no new measurement).

    Params: `source` (experiment id whose result holds the "GEMM kernels vs cuBLAS" table), `n` (the size kept).
    The result records `derived_from` so reports and coverage count it as derived, not measured.
    """
    source, n = ctx.param("source"), ctx.param("n")
    if not source or not isinstance(n, int):
        raise ValueError(f"params source and n are required (got source={source!r}, n={n!r})")
    rec = ctx.derived_rows(source)
    tables = [t for t in rec.get("tables", []) if t.get("name") == "GEMM kernels vs cuBLAS"]
    if not tables:
        raise RuntimeError(f"{source}: its stored result has no 'GEMM kernels vs cuBLAS' table")
    src = tables[0]
    cols = [(c["name"], c.get("unit", "")) for c in src["columns"]]
    i_n = [c for c, _ in cols].index("N")
    sizes = {r[i_n] for r in src["rows"]}
    keep = n if n in sizes else max(sizes)  # a quick sweep stops below n: keep its largest size
    t = Table.of(f"GEMM kernels vs cuBLAS at N={keep} (rows of {source})", cols)
    for r in src["rows"]:
        if r[i_n] == keep:
            t.add(*r)
    notes = [f"Derived: the rows of {source}'s run at N={keep}; nothing was measured again for this experiment."]
    notes += [x for x in rec.get("notes", []) if x.startswith(("Target", "Goal"))]
    return Output(tables=[t], notes=notes, derived_from=[source])
