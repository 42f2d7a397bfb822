"""Sub-commands of `lab`, one module per concern; each module defines `register(app: typer.Typer)`."""

from __future__ import annotations

from typing import Any


def catalogue_or_exit() -> Any:
    """The curriculum catalogue, or exit 2 naming what is wrong with it (for the sub-commands that read it)."""
    import typer
    from rich.console import Console

    from ailab.curriculum import CatalogueError, catalogue

    try:
        return catalogue()
    except CatalogueError as exc:
        Console(stderr=True).print(f"[bold red]error:[/] {exc}", soft_wrap=True)
        raise typer.Exit(2) from None
