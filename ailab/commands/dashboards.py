"""`lab dashboards [--check]`: generate dashboards/ (Grafana, Prometheus rules + tests, Alertmanager) or check it."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.console import Console

console = Console()
err = Console(stderr=True)


def dashboards(
    check: Annotated[
        bool, typer.Option("--check", help="fail if dashboards/ drifted from the generators or does not validate")
    ] = False,
) -> None:
    """Write the generated dashboards, rules, rule tests and Alertmanager config under dashboards/."""
    # imported here: grafana-foundation-sdk is not needed by `lab` on a GPU machine that only runs experiments
    from ailab.observability import generate
    from ailab.observability.tools import ToolMissingError

    try:
        if check:
            problems = generate.check()
            for p in problems:
                err.print(f"[bold red]error:[/] {p}")
            if problems:
                raise typer.Exit(1)
            console.print("dashboards/: up to date; promtool, amtool and rule tests pass")
            return
        changed = generate.write()
        problems = generate.validate(generate.REPO_ROOT)
    except ToolMissingError as exc:
        err.print(f"[bold red]error:[/] {exc}")
        raise typer.Exit(2) from None
    for rel in changed:
        console.print(f"wrote {rel}")
    console.print(f"{len(changed)} file(s) changed")
    for p in problems:
        err.print(f"[bold red]error:[/] {p}")
    if problems:
        raise typer.Exit(1)


def register(app: typer.Typer) -> None:
    app.command("dashboards")(dashboards)
