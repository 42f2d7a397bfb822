"""`lab review weekNN|all`: the week's review from stored results; `lab diagrams [--check]`: the architecture
diagrams of docs/diagrams/, drawn from the code's own definitions; `lab writing [--check]`: the writing tasks'
templates of docs/writing/, filled with measured facts."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.console import Console

from ailab.commands import catalogue_or_exit

console = Console()
err = Console(stderr=True)


def review(
    target: Annotated[str, typer.Argument(help="week01 … week13 (or 1 … 13), or all")],
) -> None:
    """Write reports/weekNN/review.md: coverage, summary tables per day, comparison curves, progress curve."""
    from ailab.contract.paths import repo_relative
    from ailab.curriculum import CatalogueError, catalogue
    from ailab.review.week import ReviewError, review_week, week_number

    try:
        cat = catalogue()
        weeks = cat.weeks if target.lower() == "all" else [week_number(target, cat)]
    except (CatalogueError, ReviewError) as exc:
        err.print(f"[bold red]error:[/] {exc}", soft_wrap=True)
        raise typer.Exit(2) from None
    for w in weeks:
        console.print(repo_relative(review_week(w, cat)))


def diagrams(
    check: Annotated[bool, typer.Option("--check", help="fail if docs/diagrams/*.dot drifted from the code")] = False,
) -> None:
    """Write docs/diagrams/<name>.dot, .svg and .png (the pictures need Graphviz's `dot`: apt-get install graphviz)."""
    from ailab.review import diagrams as d

    if check:
        stale = d.stale()
        for name in stale:
            err.print(f"[bold red]error:[/] docs/diagrams/{name}.dot is stale: run `lab diagrams`")
        if stale:
            raise typer.Exit(1)
        console.print("docs/diagrams/: up to date")
        return
    try:
        for path in d.write_all():
            console.print(f"wrote {path}")
    except d.DiagramError as exc:
        err.print(f"[bold red]error:[/] {exc}", soft_wrap=True)
        raise typer.Exit(2) from None


def writing(
    check: Annotated[bool, typer.Option("--check", help="fail if docs/writing/ drifted from the results")] = False,
) -> None:
    """Write docs/writing/<id>.md: a template per writing task, filled with the measured facts of its scope."""
    from ailab.contract.paths import repo_relative
    from ailab.review import writing as w

    cat = catalogue_or_exit()
    if check:
        stale = w.stale(cat)
        for name in stale:
            err.print(f"[bold red]error:[/] docs/writing/{name} is stale: run `lab writing`")
        if stale:
            raise typer.Exit(1)
        console.print("docs/writing/: up to date")
        return
    for path in w.write_all(cat):
        console.print(f"wrote {repo_relative(path)}")


def register(app: typer.Typer) -> None:
    app.command("review")(review)
    app.command("writing")(writing)
    app.command("diagrams")(diagrams)
