"""Resume-highlight candidates drawn from the weeks' measured results: each candidate is one stored value (a table
cell, verbatim), with its unit, what it measured and a relative link to the result file that holds it.

Nothing is computed into a highlight: no ratio, sum or rounding of stored values, so every number in a sentence is
a number of the linked result. Candidates are picked by rule, not by taste:
- a throughput (unit ending in `/s`) or speedup (unit `x`/`×`) column: its highest row;
- a latency column (time unit, name naming a latency/percentile/mean/median): its lowest row;
- a verdict row (a cell PASS / MET / met): the row, with its threshold.
One candidate per experiment (the best by the rule's weight), spread over the days; writing the resume line from
them stays a person's job (the experiment is a writing task; these are its evidence).
"""

from __future__ import annotations

import re
from typing import Any

from pydantic import Field

from ailab.contract import Context, Output, Params, Table
from workloads.review.experiments.compiled import Week, _found_or_skip, _span

THROUGHPUT_WEIGHT = 3.0
SPEEDUP_WEIGHT = 2.5
LATENCY_WEIGHT = 2.0
VERDICT_WEIGHT = 1.0
_TIME_UNITS = re.compile(r"^(ms|s|µs|us|ns)(/[\w ]+)?$")
_LATENCY_NAME = re.compile(r"latency|p50|p90|p95|p99|median|mean|ttft|tpot", re.I)
_VERDICT_WORDS = {"PASS", "MET"}
_NOT_MEASURED = re.compile(r"target|offered|threshold|limit|budget|slo|requested|configured", re.I)


class HighlightParams(Params):
    weeks: list[Week] = Field(min_length=1, description="curriculum weeks whose measured results are searched (1-13)")
    count: int = Field(default=3, ge=1, le=30, description="highlights proposed (the curriculum asks for three)")
    candidates: int = Field(default=10, ge=1, le=100, description="runners-up listed below the proposed highlights")


def result_link(exp_id: str, host_class: str) -> str:
    """The result file, relative to a rendered day report (reports/weekNN/dNN.md -> reports/results/dNN/...)."""
    return f"../results/{exp_id.split('.')[0]}/{exp_id}.{host_class}.json"


def number_text(v: Any) -> str:
    """A stored number as a reader wants it: integers whole, floats to four significant digits (whole from 1000 on).
    Only rounding of the one stored value, never arithmetic on several, so the linked result holds it."""
    if not isinstance(v, float):
        return str(v)
    return f"{v:.0f}" if abs(v) >= 1000 else f"{v:.4g}"


def _is_num(v: Any) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool) and v == v


def _label(table: dict[str, Any], row: list[Any], skip: int) -> str:
    """The row's identifying cells (those that are not measured numbers with a unit), as `name value`."""
    parts = []
    for i, (c, v) in enumerate(zip(table["columns"], row, strict=False)):
        if i == skip or v is None or (c.get("unit") and _is_num(v)):
            continue
        parts.append(str(v) if i == 0 and not _is_num(v) else f"{c['name']} {number_text(v) if _is_num(v) else v}")
        if len(parts) == 2:
            break
    return ", ".join(parts)


def _value(col: dict[str, Any], v: Any) -> str:
    return f"{number_text(v)} {col['unit']}".strip()


def candidates(exp_id: str, rec: dict[str, Any], host_class: str) -> list[tuple[float, str]]:
    """(weight, sentence) for every candidate value in one stored result."""
    out: list[tuple[float, str]] = []
    head = f"{exp_id} ({rec.get('summary', '').rstrip('.')})"
    if sub := rec.get("substitute"):
        head += f" [substitute for {sub['instead_of'].split(' (')[0]}]"
    link = f"[{exp_id}.{host_class}.json]({result_link(exp_id, host_class)})"
    for t in rec.get("tables", []):
        cols, rows = t["columns"], t["rows"]
        for j, c in enumerate(cols):
            unit, name = c.get("unit", ""), c["name"]
            vals = [(r[j], r) for r in rows if j < len(r) and _is_num(r[j])]
            if not vals or not unit or _NOT_MEASURED.search(name):
                continue
            if unit.endswith("/s"):
                weight, pick, word = THROUGHPUT_WEIGHT, max, "highest"
            elif unit in ("x", "×") and "speedup" in name.lower():
                weight, pick, word = SPEEDUP_WEIGHT, max, "highest"
            elif _TIME_UNITS.match(unit) and _LATENCY_NAME.search(name):
                weight, pick, word = LATENCY_WEIGHT, min, "lowest"
            else:
                continue
            v, row = pick(vals, key=lambda x: x[0])
            if word == "highest" and v <= 0:
                continue
            where = _label(t, row, j)
            out.append(
                (
                    weight,
                    f"{head}: {word} {name} {_value(c, v)}"
                    + (f" ({where})" if where else "")
                    + f", table “{t['name']}” — {link}",
                )
            )
        for row in rows:
            if not any(isinstance(v, str) and v.strip().upper() in _VERDICT_WORDS for v in row):
                continue
            cells = [
                f"{c['name']} {_value(c, v) if _is_num(v) else v}"
                for i, (c, v) in enumerate(zip(cols, row, strict=False))
                if i and v not in (None, "")
            ]
            first = row[0] if row else ""
            out.append((VERDICT_WEIGHT, f"{head}: {first} — {', '.join(cells)}, table “{t['name']}” — {link}"))
    return out


def pick(found: dict[str, dict[str, Any]], host_class: str, n: int) -> list[tuple[str, float, str]]:
    """(experiment, weight, sentence): each experiment's best candidate, ranked by weight, days spread first."""
    best = []
    for exp_id, rec in found.items():
        cands = candidates(exp_id, rec, host_class)
        if cands:
            w, s = max(cands, key=lambda c: c[0])  # first of the heaviest: deterministic
            best.append((exp_id, w, s))
    best.sort(key=lambda b: (-b[1], b[0]))
    chosen, days = [], set()
    for b in best:  # one per day first, then the rest by weight
        if b[0].split(".")[0] not in days:
            chosen.append(b)
            days.add(b[0].split(".")[0])
    chosen += [b for b in best if b not in chosen]
    return chosen[:n]


def highlights(ctx: Context, p: HighlightParams) -> Output:
    """The weeks' highlight candidates, each a stored value with its unit and a link to its result file."""
    found = _found_or_skip(ctx, p.weeks)
    ranked = pick(found, ctx.host_class, p.count + p.candidates)
    if not ranked:
        return Output(
            notes=[f"no measured result of {_span(p.weeks)} stores a throughput, latency or verdict to cite"],
            derived_from=sorted(found),
        )
    proposed = Table.of("highlights", [("rank", ""), ("experiment", ""), ("highlight", "")])
    more = Table.of("runners-up", [("rank", ""), ("experiment", ""), ("highlight", "")])
    for i, (exp_id, _, sentence) in enumerate(ranked, 1):
        (proposed if i <= p.count else more).add(i, exp_id, sentence)
    notes = [
        f"Candidates from the measured results of {_span(p.weeks)} on {ctx.host_class}: one stored value each, "
        "verbatim, linked to its result file; picked by rule (highest throughput or speedup, lowest latency, "
        "then PASS/MET verdicts), one per experiment, days spread first.",
        "Choosing and wording the resume lines is a person's job: these are the evidence to write them from.",
    ]
    tables = [proposed] + ([more] if more.rows else [])
    return Output(tables=tables, notes=notes, derived_from=sorted({e for e, _, _ in ranked}))
