"""Another experiment's stored GEMM sweep at one size, re-presented: derived, nothing measured again."""

from __future__ import annotations

from pydantic import Field

from ailab.contract import Context, Output, Params, Table

SWEEP_TABLE = "GEMM kernels vs cuBLAS"


class DerivedGemmParams(Params):
    source: str = Field(pattern=r"^d\d\d\.e\d$", description="experiment whose stored result holds the sweep")
    n: int = Field(gt=0, description="the size kept (a quick sweep that stops below it: its largest)")


def gemm_at_size(ctx: Context, p: DerivedGemmParams) -> Output:
    """The source's "GEMM kernels vs cuBLAS" rows at N = p.n and its target notes, with derived_from = [source]."""
    rec = ctx.derived_rows(p.source)
    tables = [t for t in rec.get("tables", []) if t.get("name") == SWEEP_TABLE]
    if not tables:
        raise RuntimeError(f"{p.source}: its stored result has no {SWEEP_TABLE!r} table")
    src = tables[0]
    cols = [(c["name"], c.get("unit", "")) for c in src["columns"]]
    i_n = [c for c, _ in cols].index("N")
    sizes = {r[i_n] for r in src["rows"]}
    keep = p.n if p.n in sizes else max(sizes)
    t = Table.of(f"{SWEEP_TABLE} at N={keep} (rows of {p.source})", cols)
    for r in src["rows"]:
        if r[i_n] == keep:
            t.add(*r)
    notes = [f"Derived: the rows of {p.source}'s run at N={keep}; nothing was measured again for this experiment."]
    notes += [x for x in rec.get("notes", []) if x.startswith(("Target", "Goal"))]
    return Output(tables=[t], notes=notes, derived_from=[p.source])
