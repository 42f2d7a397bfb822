"""ncu (--clock-control none) metrics of the kernels of one harness case, one launch each; and of the best kernel
of each GEMM/convolution family (d11.e5), with the tensor-pipe utilisation."""

from __future__ import annotations

import math
import re
import time
from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from ailab.contract import Context, Output, Params, Table
from workloads.kernels import cases as _cases
from workloads.kernels import tools
from workloads.kernels.cases import Binary

NOTE_CLOCKS = "Profiled with ncu --clock-control none: the card runs at its own clocks."


def _check_regex(field: str, value: str) -> None:
    try:
        re.compile(value)
    except re.error as exc:
        raise ValueError(f"{field} {value!r} is not a regular expression: {exc}") from None


class ProfileParams(Params):
    binary: Binary
    case: str | None = Field(default=None, description="the case to run under ncu (none: every case)")
    kernel_regex: str = Field(min_length=1, description="ncu -k regex: the kernels profiled")
    launch_count: int = Field(default=40, gt=0, le=500, description="ncu -c: at most this many launches")
    tensor_pipe: bool = Field(default=False, description="also collect the tensor-pipe metrics ncu knows here")

    @model_validator(mode="after")
    def _known_case(self) -> ProfileParams:
        if self.case is not None:
            _cases.check_cases(self.binary, [self.case])
        _check_regex("kernel_regex", self.kernel_regex)
        return self


def profile_metrics(tensor: bool) -> tuple[tuple[str, str, str], ...]:
    """NCU_METRICS, plus the tensor-pipe candidates the device's ncu lists when `tensor`."""
    return tools.NCU_METRICS + (tools.tensor_metrics(tools.available_metrics()) if tensor else ())


def run_ncu(
    binary: str,
    args: tuple[str, ...],
    kernel_regex: str,
    launch_count: int,
    metrics: tuple[tuple[str, str, str], ...],
    env: dict[str, str] | None = None,
    timeout: float = 600,
) -> tuple[list[dict[str, str]], tuple[tuple[str, str, str], ...], list[str]]:
    """tools.ncu with `metrics`; when ncu refuses a tensor-pipe metric, once more without them (noted)."""
    names = tuple(m for m, _, _ in metrics)
    try:
        return tools.ncu(binary, args, kernel_regex, launch_count, names, env, timeout), metrics, []
    except RuntimeError as exc:
        tensor = [m for m in names if m in {t for t, _, _ in tools.TENSOR_METRICS}]
        if not tensor or "metric" not in str(exc).lower():
            raise
        base = tuple(m for m in metrics if m[0] not in tensor)
        rows = tools.ncu(binary, args, kernel_regex, launch_count, tuple(m for m, _, _ in base), env, timeout)
        return rows, base, [f"ncu refused the tensor-pipe metrics ({', '.join(tensor)}); profiled without them."]


def tensor_columns(metrics: tuple[tuple[str, str, str], ...]) -> list[tuple[str, str]]:
    """The "tensor pipe" column plus one per tensor metric collected (none collected: no tensor columns)."""
    tensor = [(label, unit) for m, label, unit in metrics if m in {t for t, _, _ in tools.TENSOR_METRICS}]
    return [("tensor pipe", "% of peak"), *tensor] if tensor else []


def tensor_values(row: dict[str, str], metrics: tuple[tuple[str, str, str], ...]) -> list[float]:
    names = [m for m, _, _ in metrics if m in {t for t, _, _ in tools.TENSOR_METRICS}]
    return [tools.tensor_pipe(row, names), *(tools.ncu_number(row.get(m)) for m in names)] if names else []


def tensor_caption(metrics: tuple[tuple[str, str, str], ...]) -> str:
    names = [m for m, _, _ in metrics if m in {t for t, _, _ in tools.TENSOR_METRICS}]
    if not names:
        return "No tensor-pipe metric collected."
    return f"tensor pipe = {tools.tensor_pipe_source(names)}; collected: {', '.join(names)}."


def _kernel_name(r: dict[str, str]) -> str:
    return re.sub(r"\(.*", "", r.get("Kernel Name", "?"))[:60]


def profile_table(p: ProfileParams, rows: list[dict[str, str]], metrics: tuple[tuple[str, str, str], ...]) -> Table:
    """One row per profiled launch: duration, DRAM and SM throughput, occupancy, registers, load sectors(, tensor)."""
    base = [m for m in metrics if m in tools.NCU_METRICS]
    cols = [("launch", ""), ("kernel", ""), ("grid", ""), ("block", "")]
    cols += [(label, unit) for _, label, unit in base]
    cols.append(("sectors per load request", ""))
    cols += tensor_columns(metrics)
    caption = tensor_caption(metrics) if p.tensor_pipe else ""
    t = Table.of(f"ncu profile ({p.binary}, kernels /{p.kernel_regex}/)", cols, caption)
    for r in rows:
        vals = [tools.ncu_number(r.get(m)) for m, _, _ in base]
        sectors = tools.ncu_number(r.get("l1tex__t_sectors_pipe_lsu_mem_global_op_ld.sum"))
        requests = tools.ncu_number(r.get("l1tex__t_requests_pipe_lsu_mem_global_op_ld.sum"))
        t.add(
            r.get("ID", ""),
            _kernel_name(r),
            r.get("Grid Size", ""),
            r.get("Block Size", ""),
            *vals,
            sectors / requests if requests else math.nan,
            *tensor_values(r, metrics),
        )
    return t


def ncu_profile(ctx: Context, p: ProfileParams) -> Output:
    """One row per profiled launch: duration, DRAM and SM throughput, occupancy, registers, load sectors."""
    return profile_case(ctx, p)


def profile_case(ctx: Context, p: ProfileParams, timeout: float = 600) -> Output:
    """ncu_profile with a limit on the ncu run."""
    tools.require_cuda(ctx)
    args = (*(("--quick",) if ctx.quick else ()), *(("--case", p.case) if p.case else ()))
    metrics = profile_metrics(p.tensor_pipe)
    rows, metrics, notes = run_ncu(p.binary, args, p.kernel_regex, p.launch_count, metrics, timeout=timeout)
    if not rows:
        raise RuntimeError(f"ncu profiled no kernel matching {p.kernel_regex!r}")
    return Output(tables=[profile_table(p, rows, metrics)], notes=[NOTE_CLOCKS, *notes])


# ---- the best kernel of each family (d11.e5, issue 22)


class StoredBest(Params):
    """Where the family's fastest kernel is read: the row of `table` in the stored result of `experiment` (same host
    class) with the largest `by`, among rows matching `where` whose `name` holds every `contains` and no `excludes`."""

    experiment: str = Field(pattern=r"^d\d\d\.e\d$", description="experiment whose stored result is read")
    table: str = Field(min_length=1, description="the stored table's name (its beginning is enough)")
    name: str = Field(min_length=1, description="the column naming the kernel (or SGEMM configuration)")
    where: dict[str, str | int] = Field(default_factory=dict, description="column -> value the row must have")
    contains: list[str] = Field(default_factory=list, description="substrings the name must hold")
    excludes: list[str] = Field(default_factory=list, description="substrings the name must not hold")
    by: str = Field(default="throughput", min_length=1, description="the column maximised")


class FamilyTarget(Params):
    family: str = Field(min_length=1, description="the family's label in the table")
    binary: Literal["bench_gemm", "bench_conv"]
    args: list[str] = Field(min_length=1, description="the harness's arguments (a --case, sizes, flags)")
    kernel_regex: str = Field(min_length=1, description="ncu -k regex (function name) of the family's kernels")
    kernel: str = Field(min_length=1, description="the harness row kept (AILAB_ONLY_KERNEL): the current winner")
    sgemm_config: str | None = Field(default=None, description="AILAB_SGEMM_ONLY: the autotuner candidate profiled")
    layer: str | None = Field(default=None, description="AILAB_ONLY_LAYER: the bench_conv layer (its label)")
    best: StoredBest | None = Field(default=None, description="stored result naming the winner (else the default)")
    best_sets: Literal["kernel", "sgemm_config"] = Field(default="kernel", description="what `best` replaces")

    @model_validator(mode="after")
    def _consistent(self) -> FamilyTarget:
        _check_regex("kernel_regex", self.kernel_regex)
        if "--case" in self.args[:-1]:
            _cases.check_cases(self.binary, [self.args[self.args.index("--case") + 1]])
        if self.layer is not None and self.binary != "bench_conv":
            raise ValueError(f"layer {self.layer!r}: only bench_conv has layers (binary is {self.binary})")
        if self.sgemm_config is not None and self.binary != "bench_gemm":
            raise ValueError(f"sgemm_config {self.sgemm_config!r}: only bench_gemm has SGEMM candidates")
        if self.best_sets == "sgemm_config" and self.sgemm_config is None:
            raise ValueError("best_sets 'sgemm_config' needs sgemm_config (the default candidate)")
        return self


class BottleneckParams(Params):
    progression: ProfileParams | None = Field(default=None, description="the per-kernel profile of one case")
    families: list[FamilyTarget] = Field(min_length=1, description="one ncu run (one launch) per family")
    timeout_s: int = Field(default=180, gt=0, le=600, description="limit of one ncu run (a family, the progression)")
    budget_s: int = Field(default=480, gt=0, le=3600, description="all families' runs together; the rest is not run")

    @field_validator("families")
    @classmethod
    def _unique(cls, v: list[FamilyTarget]) -> list[FamilyTarget]:
        seen = [f.family for f in v]
        dup = sorted({f for f in seen if seen.count(f) > 1})
        if dup:
            raise ValueError(f"families: the labels {dup} are used twice")
        return v


# what the family table shows: time, DRAM and SM throughput, achieved occupancy, registers (few ncu passes)
FAMILY_METRICS = {
    "gpu__time_duration.sum",
    "dram__throughput.avg.pct_of_peak_sustained_elapsed",
    "dram__bytes.sum.per_second",
    "sm__throughput.avg.pct_of_peak_sustained_elapsed",
    "sm__warps_active.avg.pct_of_peak_sustained_active",
    "launch__registers_per_thread",
}


def pick_best(rec: dict[str, Any], b: StoredBest) -> str:
    """The name of the fastest matching row of a stored result (LookupError, saying why, when there is none)."""
    tables = [t for t in rec.get("tables", []) if str(t.get("name", "")).startswith(b.table)]
    if not tables:
        raise LookupError(f"{b.experiment}: no stored table named {b.table!r}...")
    t = tables[0]
    cols = [c["name"] for c in t["columns"]]
    missing = [c for c in (b.name, b.by, *b.where) if c not in cols]
    if missing:
        raise LookupError(f"{b.experiment}: table {t['name']!r} has no column {missing[0]!r} (columns: {cols})")
    best: tuple[float, str] | None = None
    for r in t["rows"]:
        d = dict(zip(cols, r, strict=False))
        name = str(d[b.name])
        if any(d.get(k) != v for k, v in b.where.items()):
            continue
        if not all(s in name for s in b.contains) or any(s in name for s in b.excludes):
            continue
        v = d[b.by]
        if isinstance(v, bool) or not isinstance(v, int | float) or not math.isfinite(v):
            continue
        if best is None or v > best[0]:
            best = (float(v), name)
    if best is None:
        raise LookupError(f"{b.experiment}: no row of {t['name']!r} matches {b.model_dump(exclude={'experiment'})}")
    return best[1]


def choose(ctx: Context, f: FamilyTarget) -> tuple[FamilyTarget, str]:
    """The target with the stored winner filled in, and where the choice came from."""
    if f.best is None:
        return f, "binding"
    rec = ctx.result_of(f.best.experiment)
    if rec is None or rec.get("status") != "ok":
        return f, f"binding (no stored {f.best.experiment} result for {ctx.host_class})"
    try:
        name = pick_best(rec, f.best)
    except LookupError as exc:
        return f, f"binding ({exc})"
    return f.model_copy(update={f.best_sets: name}), f"fastest in stored {f.best.experiment} ({ctx.host_class})"


def family_env(f: FamilyTarget, quick: bool) -> dict[str, str]:
    env = {"AILAB_ONLY_KERNEL": f.kernel}
    if f.sgemm_config:
        env["AILAB_SGEMM_ONLY"] = f.sgemm_config
    if f.layer and not quick:  # a quick run's layers are small ones with other labels: its first one is profiled
        env["AILAB_ONLY_LAYER"] = f.layer
    return env


def gemm_bottlenecks(ctx: Context, p: BottleneckParams) -> Output:
    """The per-kernel profile of the GEMM progression, then one ncu launch of the best kernel of each family."""
    tools.require_cuda(ctx)
    tables: list[Table] = []
    notes = [NOTE_CLOCKS]
    if p.progression is not None:  # bounded like a family; a failure is a note, the families still run
        try:
            out = profile_case(ctx, p.progression, timeout=p.timeout_s)
            tables += out.tables
            notes += out.notes[1:]
        except RuntimeError as exc:
            notes.append(f"Per-kernel profile ({p.progression.binary} --case {p.progression.case}): {str(exc)[-600:]}")
    core = tuple(m for m in tools.NCU_METRICS if m[0] in FAMILY_METRICS)
    metrics = core + tools.tensor_metrics(tools.available_metrics())
    cols: list[tuple[str, str]] = [("family", ""), ("kernel", ""), ("configuration / layer", ""), ("chosen from", "")]
    cols += [("ncu kernel", ""), ("grid", ""), ("block", "")]
    cols += [(label, unit) for _, label, unit in core]
    tcols = tensor_columns(metrics)
    cols += tcols
    t = Table.of(
        "ncu: the best kernel of each family, one launch each",
        cols,
        f"{tensor_caption(metrics)} achieved occupancy = sm__warps_active.avg.pct_of_peak_sustained_active.",
    )
    t0 = time.monotonic()
    for f0 in p.families:
        f, origin = choose(ctx, f0)
        config = f.sgemm_config or f.layer or ""
        args = (*(("--quick",) if ctx.quick else ()), *f.args)
        left = p.budget_s - (time.monotonic() - t0)
        if left < 10:
            t.add(f.family, f.kernel, config, origin, "not run", "", "", *[math.nan] * (len(cols) - 7))
            notes.append(f"{f.family}: not run, the budget of {p.budget_s} s for all families was spent.")
            continue
        try:
            rows, used, extra = run_ncu(
                f.binary, args, f.kernel_regex, 1, metrics, family_env(f, ctx.quick), min(p.timeout_s, left)
            )
            notes += extra
            if not rows:
                raise RuntimeError(f"ncu profiled no launch of /{f.kernel_regex}/ (is {f.kernel!r} a row name?)")
        except (RuntimeError, OSError) as exc:
            t.add(f.family, f.kernel, config, origin, "not profiled", "", "", *[math.nan] * (len(cols) - 7))
            notes.append(f"{f.family}: not profiled: {str(exc)[-600:]}")
            continue
        r = rows[0]
        vals = [tools.ncu_number(r.get(m)) for m, _, _ in core]
        tv = tensor_values(r, used)  # none when ncu refused the tensor metrics
        tv += [math.nan] * (len(tcols) - len(tv))
        t.add(
            f.family,
            f.kernel,
            config,
            origin,
            _kernel_name(r),
            r.get("Grid Size", ""),
            r.get("Block Size", ""),
            *vals,
            *tv,
        )
    tables.append(t)
    notes.append(
        "Best kernel of each family: the harness runs only that kernel (AILAB_ONLY_KERNEL, AILAB_SGEMM_ONLY, "
        "AILAB_ONLY_LAYER) and ncu profiles its first launch (-c 1, the reference-checked one)."
    )
    return Output(tables=tables, notes=notes)
