"""Templates for the writing tasks (retrospectives, summaries, lessons learned, growth, future plan): one file per
task under docs/writing/, filled with the facts the results hold for the task's scope and left with headed
sections a person writes. Nothing measured is typed here: tables are copied from result files, counts are counted
from them, and every fact links to its file. `lab writing` writes them, `lab writing --check` fails when a result
changed without re-rendering (tests/unit/review/test_review_writing.py).

Coverage keeps counting these experiments as `writing task`: a template is not the text the task asks for.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ailab.contract.paths import REPO_ROOT
from ailab.curriculum import Catalogue, Day
from ailab.report.render import table_md
from ailab.results.coverage import LABELS, classify, is_generated
from ailab.results.store import Result, load_day

WRITING_DIR = REPO_ROOT / "docs" / "writing"
_LINK = "../../reports/results"  # from docs/writing/ to the result files


@dataclass(frozen=True)
class Task:
    id: str
    scope: str  # "day", "week" or "weeks"
    weeks: tuple[int, ...] = ()  # for "week"/"weeks"; "day" uses the task's own day
    substitutes: bool = False  # add the program's substitutes table (what the lab uses instead of what it names)
    sections: tuple[str, ...] = ()  # the headings to write; empty: chosen from the task's summary


_PROGRAM = tuple(range(1, 14))
# The writing tasks of issue 19 and the results each one is written from (its own day, its week, or a span).
TASKS = (
    Task("d49.e2", "week", (7,)),
    Task("d63.e2", "week", (9,)),
    Task("d70.e3", "week", (10,)),
    Task("d71.e1", "day"),
    Task("d71.e3", "day"),
    Task(
        "d71.e4",
        "day",
        substitutes=True,
        sections=(
            "Projects surveyed (what each is for, its architecture, licence, activity)",
            "How each compares with what this lab runs instead",
            "What would change if the lab used it",
            "Open questions",
        ),
    ),
    Task("d71.e5", "day"),
    Task("d72.e5", "day"),
    Task("d73.e5", "day"),
    Task("d75.e5", "day"),
    Task("d76.e5", "day"),
    Task("d77.e3", "week", (11,)),
    Task("d80.e5", "day"),
    Task("d81.e5", "day"),
    Task("d82.e5", "day"),
    Task("d83.e5", "day"),
    Task("d84.e2", "week", (12,)),
    Task("d85.e5", "weeks", (1, 2, 3, 4, 5, 6)),
    Task("d86.e5", "weeks", (7, 8, 9, 10, 11, 12)),
    Task("d87.e4", "weeks", _PROGRAM),
    Task("d88.e5", "day"),
    Task("d89.e4", "weeks", _PROGRAM),
    Task("d89.e5", "weeks", _PROGRAM),
    Task("d90.e3", "weeks", _PROGRAM),
    Task("d90.e4", "weeks", _PROGRAM),
    Task("d90.e5", "weeks", _PROGRAM),
)
_RETRO = ("What was built", "What the numbers say", "What went wrong or surprised", "What to change next time")
_SUMMARY = ("Summary", "What the numbers say", "Trade-offs and limits", "Open questions")
_GROWTH = ("Where I started", "What I can do now, with evidence", "Gaps", "Next steps")


def _sections(summary: str) -> tuple[str, ...]:
    s = summary.lower()
    if "retrospective" in s or "lessons" in s:
        return _RETRO
    if "growth" in s or "plan" in s or "readme" in s:
        return _GROWTH
    return _SUMMARY


def _link(r: Result) -> str:
    return f"[{r.path.name}]({_LINK}/{r.path.parent.name}/{r.path.name})"


def _days(task: Task, cat: Catalogue) -> list[Day]:
    if task.scope == "day":
        return [cat.day(int(task.id[1:3]))]
    return [d for w in task.weeks for d in cat.week(w)]


def render_task(task: Task, cat: Catalogue, results_root: Path | None = None) -> str:
    exp = cat.experiments[task.id]
    own = cat.day(int(task.id[1:3]))
    days = _days(task, cat)
    where = (
        f"day {own.day} (week {own.week}): {own.title.en}"
        if task.scope == "day"
        else f"week{'s' if len(task.weeks) > 1 else ''} {task.weeks[0]}"
        + (f"–{task.weeks[-1]}" if len(task.weeks) > 1 else "")
    )
    counts: dict[str, int] = {}
    measured: list[tuple[str, str, str, Result]] = []
    generated: list[tuple[str, str, Result]] = []
    missing: list[tuple[str, str, str]] = []
    highlights: list[str] = []
    for d in days:
        results = load_day(d.id, results_root)
        for e in d.experiments:
            if e.id == task.id:
                continue
            mine = [r for r in results if r.id == e.id and r.error is None]
            kind = classify(e, mine)
            counts[kind] = counts.get(kind, 0) + 1
            ok = [r for r in mine if r.status == "ok"]
            for r in ok:
                if is_generated(r.data):
                    generated.append((e.id, e.summary, r))
                elif r.data.get("derived_from"):
                    highlights += [
                        row[2].replace("(../results/", f"({_LINK}/")
                        for t in r.data.get("tables", [])
                        if t["name"] == "highlights"
                        for row in t["rows"]
                    ]
                else:
                    measured.append((e.id, e.summary, LABELS[kind], r))
            if not ok:
                missing.append((e.id, e.summary, LABELS[kind]))
    md = [
        "<!-- generated by `lab writing` from reports/results/ and the catalogue; do not edit the facts -->",
        "",
        f"# {task.id} — {exp.summary}",
        "",
        f"> {exp.text}",
        "",
        f"A writing task (counted as `writing task` in `lab coverage`): a person writes it. This template holds the "
        f"facts the results of {where} hold, each linked to its result file; the sections at the end are to write.",
        "",
        "## Coverage of the scope",
        "",
        "| kind | experiments |",
        "|---|---|",
    ]
    md += [f"| {LABELS[k]} | {n} |" for k, n in sorted(counts.items(), key=lambda kv: -kv[1])]
    md += ["", "## Measured", ""]
    if not measured:
        md += ["_No measured result in this scope yet._", ""]
    elif task.scope == "day":
        for exp_id, summary, kind, r in measured:
            md += [f"### {exp_id} — {summary}", "", f"{kind} on `{r.host_class}`: {_link(r)}", ""]
            for t in r.data.get("tables", []):
                md += [f"#### {t['name']}", "", table_md(t), ""]
    else:
        md += ["| experiment | summary | kind | result |", "|---|---|---|---|"]
        md += [f"| {i} | {s.replace('|', '/')} | {k} | {_link(r)} |" for i, s, k, r in measured]
        md.append("")
    if generated:
        md += ["## Generated from the code (diagrams, not measurements)", ""]
        for exp_id, summary, r in generated:
            md += [f"- {exp_id} — {summary.rstrip('.')}: {_link(r)}"]
            md += [
                f"  - ![{label}](../../{path})" if path.endswith(".png") else f"  - {label}: [`{path}`](../../{path})"
                for label, path in r.data.get("artifacts", {}).items()
                if not path.endswith(".svg")
            ]
        md.append("")
    if task.substitutes:
        md += _substitutes(cat, results_root)
    if highlights:
        md += ["## Highlight candidates (from the stored highlight results)", ""] + [f"- {h}" for h in highlights]
        md.append("")
    if missing:
        md += ["## Not measured here", "", "| experiment | summary | why |", "|---|---|---|"]
        md += [f"| {i} | {s.replace('|', '/')} | {k} |" for i, s, k in missing]
        md.append("")
    md += ["## To write", ""]
    for heading in task.sections or _sections(exp.summary):
        md += [f"### {heading}", "", "_(a person writes this)_", ""]
    prompts = own.questions
    if prompts:
        md += ["Questions of the day to answer along the way:", ""] + [f"- {q}" for q in prompts] + [""]
    return "\n".join(md)


def _substitutes(cat: Catalogue, results_root: Path | None) -> list[str]:
    """What the lab used instead of what the curriculum names, from every stored result's `substitute` field."""
    rows: dict[tuple[str, str], list[Result]] = {}
    whys: dict[tuple[str, str], str] = {}
    for day in cat.days.values():
        for r in load_day(day.id, results_root):
            sub = r.data.get("substitute") if r.error is None and r.status == "ok" else None
            if sub:
                key = (sub["instead_of"], sub["used"])
                rows.setdefault(key, []).append(r)
                whys.setdefault(key, sub["why"])
    md = [
        "## What this lab runs instead of the projects the curriculum names",
        "",
        "From the `substitute` field of every stored result (what the curriculum names, what was used, why): the "
        "starting list of projects to survey.",
        "",
    ]
    if not rows:
        return [*md, "_No stored result records a substitute._", ""]
    md += ["| instead of | used here | why | results |", "|---|---|---|---|"]
    for (instead, used), results in sorted(rows.items(), key=lambda kv: kv[0][0].lower()):
        links = ", ".join(_link(r) for r in results)
        cells = (c.replace("|", "/").replace("\n", " ") for c in (instead, used, whys[(instead, used)]))
        md.append("| " + " | ".join(cells) + f" | {links} |")
    return [*md, ""]


def render_index() -> str:
    md = [
        "<!-- generated by `lab writing`; do not edit -->",
        "",
        "# Writing tasks",
        "",
        "Templates for the curriculum's writing tasks, filled with measured facts from `reports/results/` "
        "(ailab/review/writing.py). The texts themselves are a person's to write.",
        "",
    ]
    md += [f"- [{t.id}]({t.id}.md)" for t in TASKS]
    return "\n".join(md) + "\n"


def rendered(cat: Catalogue, results_root: Path | None = None) -> dict[str, str]:
    out = {f"{t.id}.md": render_task(t, cat, results_root) for t in TASKS}
    out["README.md"] = render_index()
    return out


def write_all(cat: Catalogue, out_dir: Path = WRITING_DIR, results_root: Path | None = None) -> list[Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = []
    for name, body in rendered(cat, results_root).items():
        (out_dir / name).write_text(body, encoding="utf-8")
        paths.append(out_dir / name)
    return paths


def stale(cat: Catalogue, out_dir: Path = WRITING_DIR, results_root: Path | None = None) -> list[str]:
    return [
        name
        for name, body in rendered(cat, results_root).items()
        if not (out_dir / name).is_file() or (out_dir / name).read_text(encoding="utf-8") != body
    ]
