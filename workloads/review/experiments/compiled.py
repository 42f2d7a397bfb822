"""Week and program reviews as derived results: the stored tables and series of the weeks' experiments on this host
class, re-presented under one experiment, and the program's learning curve counted from them.

Only measured results are compiled (CPU/GPU measurements and substitutes); results that are themselves derived are
left out, so a review never re-presents rows a second time. Which days make a week comes from the week facts.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import Field

from ailab.contract import Column, Context, Output, Params, Series, Skip, Table, facts

Week = Annotated[int, Field(ge=1, le=13)]


class CompiledParams(Params):
    weeks: list[Week] = Field(min_length=1, description="curriculum weeks whose results are compiled (1-13)")
    tables: Literal["all", "index"] = Field(
        default="all", description="all: every stored table re-presented; index: one row per stored table"
    )


class CurveParams(Params):
    weeks: list[Week] = Field(min_length=1, description="curriculum weeks whose results are compiled (1-13)")


def week_days(week: int) -> list[int]:
    """Days of a curriculum week, from ailab/contract/facts/weeks.yaml ('8-14' -> [8, ..., 14])."""
    first, last = (int(x) for x in facts.week(week).days.split("-"))
    return list(range(first, last + 1))


def experiment_ids(weeks: list[int]) -> list[str]:
    """dNN.e1 … dNN.e5 of every day of `weeks`, in order (every curriculum day has five experiments)."""
    return [f"d{d:02d}.e{k}" for w in weeks for d in week_days(w) for k in range(1, 6)]


def measured(ctx: Context, weeks: list[int]) -> dict[str, dict[str, Any]]:
    """id -> stored ok result of this host class, for the weeks' experiments measured directly or by substitute."""
    out = {}
    for exp_id in experiment_ids(weeks):
        if exp_id == ctx.experiment_id:
            continue
        rec = ctx.result_of(exp_id)
        if rec and rec.get("status") == "ok" and not rec.get("derived_from"):
            out[exp_id] = rec
    return out


def _span(weeks: list[int]) -> str:
    return f"week {weeks[0]}" if len(weeks) == 1 else f"weeks {', '.join(str(w) for w in weeks)}"


def _found_or_skip(ctx: Context, weeks: list[int]) -> dict[str, dict[str, Any]]:
    found = measured(ctx, weeks)
    if not found:
        raise Skip(
            f"no measured result of {_span(weeks)} on this host class ({ctx.host_class}): run the week's experiments "
            "here, or this review on the host class that measured them"
        )
    return found


def _kind(rec: dict[str, Any]) -> str:
    sub = rec.get("substitute")
    return f"substitute: {sub['used']} instead of {sub['instead_of']}" if sub else "measured"


def summary_tables(ctx: Context, p: CompiledParams) -> Output:
    """The weeks' stored tables in one place: an index (one row per stored table) and, with tables=all, each table."""
    found = _found_or_skip(ctx, p.weeks)
    index = Table.of(
        "compiled tables",
        [("experiment", ""), ("summary", ""), ("kind", ""), ("table", ""), ("rows", "count"), ("columns", "count")],
    )
    tables = [index]
    for exp_id, rec in found.items():
        for t in rec.get("tables", []):
            index.add(exp_id, rec.get("summary", ""), _kind(rec), t["name"], len(t["rows"]), len(t["columns"]))
            if p.tables == "all":
                cols = [Column(c["name"], c.get("unit", "")) for c in t["columns"]]
                tables.append(Table(f"{exp_id}: {t['name']}", cols, [list(r) for r in t["rows"]], t.get("caption", "")))
    ids = experiment_ids(p.weeks)
    notes = [
        f"{len(found)} of {len(ids) - (ctx.experiment_id in ids)} experiments of {_span(p.weeks)} have a measured "
        f"result on {ctx.host_class}; derived results are left out (their rows are already here or in their source).",
    ]
    return Output(tables=tables, notes=notes, derived_from=sorted(found))


def comparison_curves(ctx: Context, p: CurveParams) -> Output:
    """The weeks' stored series, re-presented under one experiment (each named by the experiment that stored it)."""
    found = _found_or_skip(ctx, p.weeks)
    series, used = [], []
    for exp_id, rec in found.items():
        for s in rec.get("series", []):
            series.append(
                Series(
                    name=f"{exp_id}: {s['name']}",
                    x=Column(s["x"]["name"], s["x"].get("unit", "")),
                    y=Column(s["y"]["name"], s["y"].get("unit", "")),
                    lines={k: [list(pt) for pt in v] for k, v in s["lines"].items()},
                    log_x=s.get("log_x", False),
                    log_y=s.get("log_y", False),
                    kind=s.get("kind", "line"),
                )
            )
            used.append(exp_id)
    if not series:
        raise Skip(f"no measured result of {_span(p.weeks)} on {ctx.host_class} stores a series to plot")
    index = Table.of("compiled series", [("experiment", ""), ("series", ""), ("lines", "count")])
    for s, exp_id in zip(series, used, strict=True):
        index.add(exp_id, s.name.split(": ", 1)[1], len(s.lines))
    return Output(tables=[index], series=series, derived_from=sorted(set(used)))


def learning_curve(ctx: Context, p: CurveParams) -> Output:
    """Experiments with a measured result per week and cumulative, on this host class: the program's progress."""
    found = _found_or_skip(ctx, p.weeks)
    t = Table.of(
        "progress per week",
        [("week", ""), ("measured", "experiments"), ("substitute", "experiments"), ("cumulative", "experiments")],
    )
    curve = Series("learning curve", Column("week", ""), Column("experiments with a result", "count"))
    total = 0
    for w in p.weeks:
        ids = set(experiment_ids([w]))
        real = sum(1 for i in ids if i in found and not found[i].get("substitute"))
        sub = sum(1 for i in ids if i in found and found[i].get("substitute"))
        total += real + sub
        t.add(w, real, sub, total)
        curve.point("cumulative (measured + substitute)", w, total)
        curve.point("this week", w, real + sub)
    return Output(tables=[t], series=[curve], derived_from=sorted(found))
