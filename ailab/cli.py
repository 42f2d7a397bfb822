"""`lab`: list, doctor, run and report; other commands (up/down, bench, render, dashboards, images) live in
ailab/commands/<name>.py, each exposing `register(app: typer.Typer)`, and are discovered at start-up."""

from __future__ import annotations

import importlib
import json
import pkgutil
import sys
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from ailab import commands, host
from ailab.curriculum import CatalogueError, Need, catalogue
from ailab.report.render import rel

app = typer.Typer(
    help="AI Infra Lab: run the 90-day curriculum's experiments and report them.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
console = Console()
err = Console(stderr=True)


def fail(message: str, code: int = 2) -> typer.Exit:
    err.print(f"[bold red]error:[/] {message}")
    return typer.Exit(code)


def experiment_status(exp, device: str) -> str:
    """runnable here / needs GPU / needs cluster / needs TensorRT / ... / planned."""
    if exp.binding is None:
        return "planned"
    unmet = host.unmet(exp.effective_needs, device)
    if not unmet:
        return "runnable here"
    needs = exp.effective_needs
    for need, word in (
        (Need.tensorrt, "needs TensorRT"),
        (Need.multi_gpu, "needs multi-GPU"),
        (Need.gpu, "needs GPU"),
        (Need.cluster, "needs cluster"),
        (Need.container_engine, "needs container engine"),
        (Need.local_platform, "needs local platform"),
    ):
        if need in needs and any(word.split()[-1].lower()[:4] in u.lower() for u in unmet):
            return word
    return "needs: " + "; ".join(unmet)


@app.command("list")
def list_cmd(
    week: Annotated[int | None, typer.Option(help="only this week (1-13)")] = None,
    needs: Annotated[
        str | None, typer.Option(help=f"only experiments needing this ({', '.join(n.value for n in Need)})")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="machine-readable output")] = False,
) -> None:
    """List days and experiments with their status on this host, plus totals."""
    try:
        cat = catalogue()
    except CatalogueError as exc:
        raise fail(str(exc)) from None
    if week is not None and week not in cat.weeks:
        raise fail(f"--week {week}: unknown week (1–{max(cat.weeks)})")
    if needs is not None and needs not in {n.value for n in Need}:
        raise fail(f"--needs {needs!r}: unknown need (allowed: {', '.join(n.value for n in Need)})")
    device = "cuda" if host.gpus() else "cpu"
    days = [d for d in cat.days.values() if week is None or d.week == week]
    rows = []
    for d in days:
        for e in d.experiments:
            if needs and Need(needs) not in e.effective_needs:
                continue
            rows.append(
                {
                    "id": e.id,
                    "day": d.day,
                    "week": d.week,
                    "day_title": d.title.en,
                    "summary": e.summary,
                    "runner": e.runner,
                    "needs": [n.value for n in e.effective_needs],
                    "status": experiment_status(e, device),
                }
            )
    totals: dict[str, int] = {}
    for r in rows:
        totals[r["status"]] = totals.get(r["status"], 0) + 1
    if as_json:
        print(
            json.dumps(
                {
                    "days": len({r["day"] for r in rows}) if needs else len(days),
                    "experiments": len(rows),
                    "totals": totals,
                    "items": rows,
                },
                ensure_ascii=False,
                indent=1,
            )
        )
        return
    t = Table("id", "day", "experiment", "needs", "status", title="AI Infra Lab catalogue")
    for r in rows:
        t.add_row(r["id"], r["day_title"], r["summary"], ",".join(r["needs"]), r["status"])
    console.print(t)
    console.print(
        f"{len(days)} days, {len(rows)} experiments: " + ", ".join(f"{v} {k}" for k, v in sorted(totals.items()))
    )


@app.command()
def doctor(as_json: Annotated[bool, typer.Option("--json", help="machine-readable output")] = False) -> None:
    """Check what this host has: Python, CPU, GPU, driver, CUDA, TensorRT, servers, podman, kubectl, pulumi."""
    checks = host.doctor()
    if as_json:
        print(
            json.dumps(
                [{"name": c.name, "ok": c.ok, "detail": c.detail, "fix": "" if c.ok else c.fix} for c in checks],
                indent=1,
            )
        )
        return
    t = Table("check", "status", "detail", "how to fix", title="lab doctor")
    for c in checks:
        t.add_row(c.name, "[green]ok[/]" if c.ok else "[yellow]missing[/]", c.detail, "" if c.ok else c.fix)
    console.print(t)


@app.command()
def run(
    selection: Annotated[str, typer.Argument(help="week01 | d03 | d03.e1 (comma-separated for several)")],
    device: Annotated[str | None, typer.Option(help="cpu or cuda (default: cuda when a GPU is present)")] = None,
    quick: Annotated[bool, typer.Option(help="small sizes, for tests and smoke runs")] = False,
    report: Annotated[bool, typer.Option(help="render the day/week reports afterwards")] = True,
) -> None:
    """Run experiments; store each result under reports/results/; exit 1 if any failed."""
    from ailab.report import report_day, report_week
    from ailab.results import provenance
    from ailab.runner import PLANNED, SelectionError, default_device, resolve, run_one

    if device is not None and device not in ("cpu", "cuda"):
        raise fail(f"--device {device!r}: allowed values are cpu, cuda")
    try:
        exps = resolve(selection)
    except SelectionError as exc:
        raise fail(str(exc)) from None
    except CatalogueError as exc:
        raise fail(str(exc)) from None
    device = device or default_device()
    prov = provenance.collect()
    outcomes = []
    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        TextColumn("{task.completed}/{task.total}"),
        TimeElapsedColumn(),
        console=console,
        transient=False,
    ) as bar:
        task = bar.add_task("running", total=len(exps))
        for e in exps:
            bar.update(task, description=f"{e.id} {e.summary[:50]}")
            outcomes.append(run_one(e, device, quick, prov, log=lambda m: bar.console.print(f"  {m}")))
            bar.advance(task)
    t = Table("experiment", "status", "reason / result file", title=f"lab run {selection} ({device})")
    colour = {"ok": "green", "skipped": "yellow", "failed": "red"}
    for o in outcomes:
        detail = o.reason if o.status != "ok" else rel(o.path) if o.path else ""
        t.add_row(o.id if hasattr(o, "id") else o.experiment_id, f"[{colour[o.status]}]{o.status}[/]", detail)
    console.print(t)
    ran = [o for o in outcomes if o.reason != PLANNED]
    counts = {s: sum(o.status == s for o in ran) for s in ("ok", "skipped", "failed")}
    console.print(
        f"{counts['ok']} ok, {counts['skipped']} skipped, {counts['failed']} failed, {len(outcomes) - len(ran)} planned"
    )
    if report:
        cat = catalogue()
        for week in sorted({cat.day(e.day).week for e in exps}):
            console.print(f"report: {rel(report_week(week))}")
        for day in sorted({e.day for e in exps}):
            report_day(cat.day(day))
    if counts["failed"]:
        raise typer.Exit(1)


@app.command("report")
def report_cmd(target: Annotated[str, typer.Argument(help="d03 | week01")]) -> None:
    """Render markdown (tables, plots, skipped reasons, provenance) from stored results only."""
    from ailab.report import report_day, report_week
    from ailab.runner import SelectionError, resolve

    try:
        exps = resolve(target)
    except SelectionError as exc:
        raise fail(str(exc)) from None
    cat = catalogue()
    if target.lower().startswith("w"):
        console.print(rel(report_week(cat.day(exps[0].day).week)))
    else:
        for day in sorted({e.day for e in exps}):
            console.print(rel(report_day(cat.day(day))))


def _register_commands() -> None:
    for mod in sorted(m.name for m in pkgutil.iter_modules(commands.__path__)):
        module = importlib.import_module(f"{commands.__name__}.{mod}")
        module.register(app)


_register_commands()


def main() -> None:
    app(prog_name="lab")


if __name__ == "__main__":
    sys.exit(main())
