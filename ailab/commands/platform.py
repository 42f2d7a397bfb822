"""`lab up [--week N]`, `lab status`, `lab down`: the embedded default platform as local processes.

`lab up` is a command-line front-end of the data plane too: it builds the week's Triton model repository with the
serving area's builder (workloads.serving.repository) and hands the path to the triton service as its option.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from ailab.contract import paths
from ailab.local import process, registry, state
from ailab.local.platform import Platform, status
from ailab.local.registry import PlatformError

console = Console()
err = Console(stderr=True)


def _fail(message: str) -> typer.Exit:
    err.print(f"[bold red]error:[/] {message}")
    return typer.Exit(2)


def up(
    week: Annotated[int, typer.Option(help="start this week's services (ailab/local/weeks.yaml), 1-13")] = 1,
    supervise: Annotated[bool, typer.Option(help="restart a crashed service and count restarts")] = False,
    free_ports: Annotated[bool, typer.Option(help="let the kernel pick free ports instead of the defaults")] = False,
    service: Annotated[
        list[str] | None, typer.Option(help="start only this service of the week (repeatable), e.g. --service triton")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="machine-readable output")] = False,
) -> None:
    """Start the week's services on 127.0.0.1 and wait until each is ready; running ones are left alone."""
    if not 1 <= week <= 13:
        raise _fail(f"--week {week}: allowed 1-13")
    try:
        names = registry.week_services(week)
        for s in service or []:
            if s not in names:
                raise _fail(f"--service {s}: not a week-{week} service (allowed: {', '.join(names)})")
        wanted = service or names
        p = Platform(
            week=week,
            services=wanted,
            supervise=supervise,
            supervise_in_process=False,
            free_ports=free_ports,
            options=_triton_options(week, wanted),
        )
        rep = p.up()
    except PlatformError as exc:
        raise _fail(str(exc)) from None
    if as_json:
        print(json.dumps({"started": rep.started, "already_running": rep.already, "total_s": rep.total_s}))
        return
    for name in rep.already:
        console.print(f"[yellow]{name}[/] already running (pid {p.record(name).pid}); not started again")
    for name, secs in rep.started.items():
        r = p.record(name)
        ports = ", ".join(f"{k} {v}" for k, v in r.ports.items())
        console.print(f"[green]{name}[/] ready in {secs:.1f} s (pid {r.pid}; {ports}; log {r.log})")
    console.print(f"up: {len(rep.started)} started, {len(rep.already)} already running, {rep.total_s:.1f} s")


def _triton_options(week: int, services: list[str]) -> dict[str, Path]:
    """The week's model repository for a triton that is about to start (a running one keeps the one it serves)."""
    if "triton" not in services:
        return {}
    sd = paths.state_dir()
    rec = state.services(sd).get("triton")
    if rec is not None and process.alive(rec.pid, rec.start_ticks):
        return {}
    from workloads.serving.repository import SpecError, build_repository, week_models

    try:
        repo = build_repository(week_models(week), sd / "models" / f"week{week:02d}")
    except SpecError as exc:
        raise _fail(f"week {week} models: {exc}") from None
    return {"triton.model_repository": repo}


def status_cmd(as_json: Annotated[bool, typer.Option("--json", help="machine-readable output")] = False) -> None:
    """Show what the local platform started: pid, state, ports, uptime, restarts, log."""
    rows = status()
    if as_json:
        print(json.dumps(rows, indent=1))
        return
    if not rows:
        console.print("nothing running (start with `lab up`)")
        return
    t = Table("service", "pid", "state", "ports", "uptime (s)", "restarts", "log", title="local platform")
    for r in rows:
        ports = ", ".join(f"{k} {v}" for k, v in r["ports"].items())
        t.add_row(r["name"], str(r["pid"]), r["state"], ports, str(r["uptime_s"]), str(r["restarts"]), r["log"])
    console.print(t)


def down() -> None:
    """Stop exactly the processes `lab up` recorded (and the supervisor), nothing else."""
    names = list(state.services(paths.state_dir()))
    stopped = Platform(services=names).down()
    gone = [n for n in names if n not in stopped]
    console.print(
        f"down: stopped {', '.join(stopped) or 'nothing'}" + (f"; already gone: {', '.join(gone)}" if gone else "")
    )


def register(app: typer.Typer) -> None:
    app.command("up")(up)
    app.command("status")(status_cmd)
    app.command("down")(down)
