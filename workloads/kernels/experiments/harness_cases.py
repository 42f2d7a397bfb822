"""Rows of the named cases of one harness binary (cuda/bench/*.cu) as tables, optional plots, targets, resources."""

from __future__ import annotations

from pydantic import Field, field_validator, model_validator

from ailab.contract import Context, Output, Params, Table
from workloads.kernels import cases as _cases
from workloads.kernels import jsonl, tools
from workloads.kernels import targets as _targets
from workloads.kernels.cases import Binary
from workloads.kernels.targets import Target


class SeriesSpec(Params):
    """A plot made from one table: one line per `group` value, points (x, y)."""

    table: str
    name: str | None = None
    x: str
    y: str
    group: str
    log_x: bool = False
    log_y: bool = False


class ResourcesSpec(Params):
    """Compiler resource usage (cuobjdump -res-usage) of the kernels of `binary` whose names contain a `match`."""

    binary: Binary
    match: list[str] = Field(min_length=1)


class CasesParams(Params):
    binary: Binary
    cases: list[str] = Field(min_length=1, description="the binary's cases whose rows this experiment shows")
    kernels: list[str] | None = Field(default=None, description="keep only rows of these kernels")
    only_n: list[int] | None = Field(default=None, description="keep only these sizes (a quick run: its largest)")
    series: list[SeriesSpec] = Field(default_factory=list, description="plots made from the tables")
    targets: list[Target] = Field(default_factory=list, description="targets judged on this run's rows")
    resources: ResourcesSpec | None = None
    caption: str = ""

    @model_validator(mode="after")
    def _known_cases(self) -> CasesParams:
        _cases.check_cases(self.binary, self.cases)
        return self

    @field_validator("only_n")
    @classmethod
    def _positive(cls, v: list[int] | None) -> list[int] | None:
        if v is not None and (not v or any(n <= 0 for n in v)):
            raise ValueError(f"sizes must be positive, got {v}")
        return v


def harness_cases(ctx: Context, p: CasesParams) -> Output:
    """Rows of `p.cases` from one run of `p.binary` (shared by experiments of one `lab run`), filtered and shown."""
    tools.require_cuda(ctx)
    parsed = tools.run_bench(p.binary, ("--quick",) if ctx.quick else ())
    recs = [r for r in parsed.records if r.case in p.cases]
    if p.kernels:
        recs = [r for r in recs if r.get("kernel") is None or r.get("kernel") in p.kernels]
    if p.only_n:
        sizes = {r.get("N") for r in recs} - {None}
        keep = set(p.only_n) & sizes or {max(sizes)}  # --quick sweeps stop below the named size: keep the largest
        recs = [r for r in recs if r.get("N") is None or r.get("N") in keep]
    if not recs:
        raise RuntimeError(f"{p.binary}: no rows for cases {p.cases}")
    out = Output(tables=jsonl.tables(recs, caption=p.caption))
    for s in p.series:
        rows = [r for r in recs if r.table == s.table]
        out.series.append(jsonl.series(rows, s.name or s.table, s.x, s.y, s.group, s.log_x, s.log_y))
    for c in p.cases:
        out.notes += parsed.notes.get(c, [])
    for name in p.targets:
        out.notes.append(_targets.check(name, parsed))
    if p.resources:
        out.tables.append(resources_table(p.resources.binary, p.resources.match))
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
