"""`lab quiz`: a mock interview drawn from the interview bank (docs/interview-bank.md). Draws N questions (seeded,
so a round can be repeated), reads an answer for each, then shows the evidence: the experiments that bear on the
question, what is measured for them now and where the result and report are. Answers are kept locally under
.lab/quiz/ (never committed). `--write-bank` / `--check-bank` regenerate / check the bank document."""

from __future__ import annotations

import json
import random
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.panel import Panel
from rich.table import Table

from ailab.commands import catalogue_or_exit

console = Console()
err = Console(stderr=True)


def _evidence(links: list[Any], results_root: Path | None) -> list[dict[str, Any]]:
    """Each linked experiment with its stored results now (status, host class, file) and its day report."""
    from ailab.contract.paths import REPO_ROOT, results_dir
    from ailab.results.store import load_result

    root = results_root or results_dir()
    out = []
    for link in links:
        files = sorted((root / link.experiment.split(".")[0]).glob(f"{link.experiment}.*.json"))
        found = [r for r in (load_result(f) for f in files) if r is not None]
        kinds = []
        for r in found:
            if r.error:
                kinds.append(f"unreadable ({r.host_class})")
                continue
            d = r.data
            word = r.status
            if r.status == "ok":
                word = "derived" if d.get("derived_from") else "substitute" if d.get("substitute") else "measured"
            kinds.append(f"{word} ({r.host_class})")
        shown = [str(f.relative_to(REPO_ROOT)) if f.is_relative_to(REPO_ROOT) else str(f) for f in files]
        out.append(
            {
                "experiment": link.experiment,
                "why": link.why,
                "summary": link.summary,
                "status": ", ".join(kinds) or "no result",
                "results": shown,
                "report": link.report,
            }
        )
    return out


def quiz(
    n: Annotated[int, typer.Option("-n", "--count", help="questions to draw")] = 5,
    seed: Annotated[
        int | None, typer.Option(help="random seed (default: from the clock, printed to repeat it)")
    ] = None,
    week: Annotated[int | None, typer.Option(help="only questions of this curriculum week (1-13)")] = None,
    answers_dir: Annotated[Path | None, typer.Option(help="where answers are kept (default .lab/quiz)")] = None,
    write_bank: Annotated[bool, typer.Option("--write-bank", help="write docs/interview-bank.md and exit")] = False,
    check_bank: Annotated[bool, typer.Option("--check-bank", help="fail if docs/interview-bank.md drifted")] = False,
) -> None:
    """A mock interview: N questions of the catalogue, your answers, then the lab's evidence for each."""
    from ailab.contract.paths import state_dir
    from ailab.review import interview

    cat = catalogue_or_exit()
    if write_bank or check_bank:
        if check_bank:
            if interview.stale(cat):
                err.print("[bold red]error:[/] docs/interview-bank.md is stale: run `lab quiz --write-bank`")
                raise typer.Exit(1)
            console.print("docs/interview-bank.md: up to date")
        else:
            console.print(f"wrote {interview.write(cat)}")
        return
    if week is not None and week not in cat.weeks:
        err.print(f"[bold red]error:[/] --week {week}: allowed one of {cat.weeks[0]}-{cat.weeks[-1]}")
        raise typer.Exit(2)
    pool = [q for q in interview.bank(cat) if week is None or q.week == week]
    if not 1 <= n <= len(pool):
        err.print(f"[bold red]error:[/] --count {n}: allowed 1-{len(pool)} (questions in the bank for this selection)")
        raise typer.Exit(2)
    seed = int(time.time()) if seed is None else seed
    drawn = random.Random(seed).sample(pool, n)
    out_dir = answers_dir or state_dir() / "quiz"
    out_dir.mkdir(parents=True, exist_ok=True)
    started = datetime.now(UTC)
    path = out_dir / f"{started:%Y%m%dT%H%M%SZ}-seed{seed}.json"
    record: dict[str, Any] = {"seed": seed, "week": week, "count": n, "started": started.isoformat(), "answers": []}
    console.print(f"Mock interview: {n} question(s), seed {seed} (repeat with --seed {seed}); answers go to {path}")
    for i, q in enumerate(drawn, 1):
        console.print(Panel(q.text, title=f"{i}/{n}  {q.key} (week {q.week})", expand=False))
        answer = typer.prompt("your answer (empty to pass)", default="", show_default=False)
        evidence = _evidence(q.links, None)
        t = Table(title="evidence", show_lines=False)
        for col in ("experiment", "why", "measured now", "result / report"):
            t.add_column(col)
        for ev in evidence:
            where = "\n".join(ev["results"] + [ev["report"]])
            t.add_row(f"{ev['experiment']}\n{ev['summary']}", ev["why"], ev["status"], where)
        console.print(t)
        record["answers"].append({"key": q.key, "question": q.text, "answer": answer, "evidence": evidence})
        path.write_text(json.dumps(record, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    console.print(f"{n} answer(s) kept in {path}")


def register(app: typer.Typer) -> None:
    app.command("quiz")(quiz)
