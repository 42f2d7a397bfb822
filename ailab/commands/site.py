"""`lab site`: build the static HTML site of every report, review, plot, diagram, doc and the coverage table into
site/ (not committed); open site/index.html in a browser."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

console = Console()
err = Console(stderr=True)


def site(
    out: Annotated[Path | None, typer.Option(help="output folder (default site/ in the repository)")] = None,
    strict: Annotated[bool, typer.Option("--strict", help="fail when a link or image resolves to nothing")] = False,
) -> None:
    """Render reports/, docs/ and README.md to HTML with the coverage table and a gallery of plots and diagrams."""
    from ailab.contract.paths import repo_relative
    from ailab.site import SITE_DIR, SiteError, build

    try:
        report = build(out or SITE_DIR)
    except SiteError as exc:
        err.print(f"[bold red]error:[/] {exc}", soft_wrap=True)
        raise typer.Exit(2) from None
    for page, link in report.broken:
        err.print(f"[yellow]broken link[/] in {page}: {link}", soft_wrap=True)
    index = (out or SITE_DIR) / "index.html"
    console.print(f"{len(report.pages)} pages, {len(report.copied)} files copied: {repo_relative(index.resolve())}")
    if strict and report.broken:
        raise typer.Exit(1)


def register(app: typer.Typer) -> None:
    app.command("site")(site)
