"""`lab`: list, doctor, run and report; other commands (up/down, bench, render, dashboards, images) live in
ailab/commands/<name>.py, each exposing `register(app: typer.Typer)`, and are discovered at start-up."""

from __future__ import annotations

import importlib
import json
import pkgutil
import sys
from contextlib import nullcontext
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from ailab import commands, host
from ailab.contract.paths import repo_relative as rel
from ailab.curriculum import CatalogueError, Need, catalogue

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
    """runnable here / needs GPU / needs 2 or more GPUs / needs cluster / needs TensorRT / ... / planned — needs X."""
    from ailab.results.coverage import needs_phrase

    if exp.binding is None:
        word = needs_phrase(exp.needs, hardware_only=True)
        return ("writing task" if exp.writing else "planned") + (f" — {word}" if word else "")
    for need, word in (
        (Need.cluster, "needs cluster"),
        (Need.tensorrt, "needs TensorRT"),
        (Need.multi_gpu, "needs 2 or more GPUs"),
        (Need.gpu, "needs GPU"),
        (Need.container_engine, "needs container engine"),
        (Need.local_platform, "needs local platform"),
    ):
        if need in exp.effective_needs and host.unmet([need], device):
            return word
    return "runnable here"


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
    set_: Annotated[
        list[str] | None,
        typer.Option(
            "--set",
            help="override a parameter: name=value, value read as YAML (duration_s=2, qps=[100,200]); repeatable; "
            "applies to every selected experiment that has the parameter",
        ),
    ] = None,
) -> None:
    """Run experiments; store each result under reports/results/; exit 1 if any failed.

    One line per experiment on the terminal; runners' output and third-party warnings go to the run's log file.
    A measured (ok) result is never replaced by a skip or a failure: that attempt is kept under .lab/attempts/.
    """
    from ailab.contract.params import ParamsError
    from ailab.local.pool import PlatformPool
    from ailab.results import provenance
    from ailab.runlog import captured, new_log_path, terminal
    from ailab.runner import PLANNED, SelectionError, check_overrides, default_device, parse_overrides, resolve, run_one

    if device is not None and device not in ("cpu", "cuda"):
        raise fail(f"--device {device!r}: allowed values are cpu, cuda")
    try:
        exps = resolve(selection)
        overrides = parse_overrides(set_ or [])
        check_overrides(exps, overrides, quick)
    except (SelectionError, CatalogueError, ParamsError) as exc:
        raise fail(str(exc)) from None
    device = device or default_device()
    prov = provenance.collect()
    log_path = new_log_path()
    out = Console(file=terminal(), highlight=False, soft_wrap=True)
    colour = {"ok": "green", "skipped": "yellow", "failed": "red"}
    outcomes = []
    width = len(str(len(exps)))
    # quick runs lend a started tritonserver to the next experiment that asks for the same one, and start the services
    # the experiments' bindings list under quick_services when the run begins; all stopped at the end
    prestart = sorted({svc for e in exps if e.binding is not None for svc in e.binding.quick_services})
    with PlatformPool(prestart=prestart) if quick else nullcontext() as pool:
        for i, e in enumerate(exps, 1):
            if e.binding is None:
                outcomes.append(run_one(e, device, quick, prov))
                continue
            if out.is_terminal:  # a live line, overwritten by the result line; logs and CI get the result line only
                out.print(f"[{i:>{width}}/{len(exps)}] {e.id} {e.summary[:60]} …", end="\r")
            with captured(log_path) as log:
                log.write(f"=== {e.id} ({e.binding.runner}) ===\n")
                o = run_one(
                    e, device, quick, prov, log=lambda m, _l=log: _l.write(m + "\n"), overrides=overrides, pool=pool
                )
            outcomes.append(o)
            tail = f"{o.duration_s:.1f} s" if o.status == "ok" else o.reason[:90]
            line = f"[{i:>{width}}/{len(exps)}] {e.id} {e.summary[:60]:<60} [{colour[o.status]}]{o.status:<7}[/] {tail}"
            out.print(line)
    ran = [o for o in outcomes if o.reason != PLANNED]
    t = Table("experiment", "status", "reason / result file", title=f"lab run {selection} ({device})")
    for o in ran:
        detail = rel(o.path) if o.status == "ok" and o.path else o.reason
        if o.kept:
            detail += f" — measured result kept: {rel(o.kept)}; this attempt: {rel(o.path)}" if o.path else ""
        t.add_row(o.experiment_id, f"[{colour[o.status]}]{o.status}[/]", detail)
    if ran:
        out.print(t)
    counts = {s: sum(o.status == s for o in ran) for s in ("ok", "skipped", "failed")}
    out.print(
        f"{counts['ok']} ok, {counts['skipped']} skipped, {counts['failed']} failed, {len(outcomes) - len(ran)} planned"
        f"; log: {rel(log_path)}"
    )
    if report:
        from ailab.report import report_week  # matplotlib: only when reports are rendered
        from ailab.review.week import review_week

        cat = catalogue()
        touched = sorted({cat.day(e.day).week for e in exps})
        for week in touched:
            out.print(f"report: {rel(report_week(week))}")
        for week in touched:
            out.print(f"review: {rel(review_week(week, cat))}")
        if later := [w for w in cat.weeks if w > touched[-1]]:  # their progress curves count this week too
            out.print(f"later weeks' reviews count these results too: lab review all (weeks {later[0]}–{later[-1]})")
    if counts["failed"]:
        raise typer.Exit(1)


@app.command()
def coverage(
    as_json: Annotated[bool, typer.Option("--json", help="machine-readable output")] = False,
) -> None:
    """Per week: measured on CPU / GPU, substitute, derived, needs cluster / TensorRT / multi-GPU / GPU, writing,
    not run, planned — counted from the files under reports/results/ and the catalogue."""
    from ailab.results.coverage import KINDS, LABELS, SHORT
    from ailab.results.coverage import coverage as compute

    try:
        cov = compute(catalogue())
    except CatalogueError as exc:
        raise fail(str(exc)) from None
    if as_json:
        print(json.dumps(cov.to_dict(), indent=1))
    else:
        t = Table("week", *(SHORT[k] for k in KINDS), title="lab coverage (experiments per kind of result)")
        for w in cov.weeks:
            t.add_row(f"{w.week:02d}", *(str(w.counts[k]) for k in KINDS))
        t.add_row("all", *(f"[bold]{cov.totals[k]}[/]" for k in KINDS))
        console.print(t)
        console.print(
            "; ".join(f"{SHORT[k]} = {LABELS[k]}" for k in KINDS if SHORT[k] != LABELS[k]), style="dim", highlight=False
        )
    for path, why in cov.unreadable:
        err.print(f"[yellow]unreadable result[/] {rel(path)}: {why}", soft_wrap=True)


@app.command()
def rederive(
    check: Annotated[bool, typer.Option(help="only list the stale derived results; exit 1 if there are any")] = False,
) -> None:
    """Re-derive every derived result whose source was measured again, for its own host class (an H200 result's
    derived files too, here: nothing is measured, the rows come from the stored sources); sources first.

    A derived result records which run of each source it used; one that shows an older run is stale.
    """
    from ailab.results import provenance
    from ailab.results.derived import order, stale
    from ailab.runlog import captured, new_log_path
    from ailab.runner import run_one

    found = stale()
    out = Console(highlight=False, soft_wrap=True)
    for s in found:
        out.print(f"stale: {s.experiment_id} ({s.host_class}): {s.why}")
    if check:
        out.print(f"{len(found)} stale derived result(s)" + ("; run `lab rederive`" if found else ""))
        if found:
            raise typer.Exit(1)
        return
    cat, prov, log_path = catalogue(), provenance.collect(), new_log_path()
    failed = 0
    for exp_id, hclass in order({(s.experiment_id, s.host_class) for s in found}):
        exp = cat.experiments[exp_id]
        device = "cpu" if hclass == "cpu" else "cuda"
        with captured(log_path) as log:
            o = run_one(exp, device, False, prov, log=lambda m, _l=log: _l.write(m + "\n"), derive_for=hclass)
        failed += o.status != "ok"
        out.print(f"{exp_id} ({hclass}): {o.status} {rel(o.path) if o.status == 'ok' and o.path else o.reason}")
    if failed:
        raise typer.Exit(1)


@app.command("report")
def report_cmd(target: Annotated[str, typer.Argument(help="d03 | week01")]) -> None:
    """Render markdown (tables, plots, skipped reasons, provenance) from stored results only."""
    from ailab.report import report_day, report_week
    from ailab.results import load_day
    from ailab.runner import SelectionError, resolve

    try:
        exps = resolve(target)
        cat = catalogue()
    except (SelectionError, CatalogueError) as exc:
        raise fail(str(exc)) from None
    if target.lower().startswith("w"):
        console.print(rel(report_week(cat.day(exps[0].day).week)))
    else:
        for day in sorted({e.day for e in exps}):
            console.print(rel(report_day(cat.day(day))))
    for day in sorted({e.day for e in exps}):
        for r in load_day(f"d{day:02d}"):
            if r.error:
                err.print(
                    f"[yellow]unreadable result[/] {rel(r.path)}: {r.error} (shown as unreadable in the report)",
                    soft_wrap=True,
                )


def _register_commands() -> None:
    for mod in sorted(m.name for m in pkgutil.iter_modules(commands.__path__)):
        module = importlib.import_module(f"{commands.__name__}.{mod}")
        module.register(app)


_register_commands()


def main() -> None:
    app(prog_name="lab")


if __name__ == "__main__":
    sys.exit(main())
