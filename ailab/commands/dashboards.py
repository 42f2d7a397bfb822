"""`lab dashboards [--check]`: generate dashboards/ (Grafana, Prometheus rules + tests, Alertmanager) or check it;
`lab dashboards snapshot NAME -o DIR`: render each panel of a generated dashboard to PNG from the live Prometheus."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

console = Console()
err = Console(stderr=True)
app = typer.Typer(
    help="Generate, check and picture the lab's dashboards.", invoke_without_command=True, no_args_is_help=False
)
# The renderer is a data-plane tool (runners use it too); `lab` hands it the dashboard JSON in a subprocess.
RENDERER = "workloads.telemetry.snapshot"


@app.callback()
def dashboards(
    ctx: typer.Context,
    check: Annotated[
        bool, typer.Option("--check", help="fail if dashboards/ drifted from the generators or does not validate")
    ] = False,
) -> None:
    """Write the generated dashboards, rules, rule tests and Alertmanager config under dashboards/."""
    if ctx.invoked_subcommand is not None:
        return
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


def dashboard_json(name: str) -> dict:
    """The generated dashboard called `name` (panels.DASHBOARDS), or a dashboard JSON file's content."""
    path = Path(name)
    if path.suffix == ".json":
        if not path.is_file():
            raise ValueError(f"dashboard {name!r}: no such file")
        return json.loads(path.read_text())
    from ailab.observability import dashboards as gen
    from ailab.observability.generate import HEADER
    from ailab.observability.panels import DASHBOARDS

    if name not in DASHBOARDS:
        raise ValueError(f"dashboard {name!r}: unknown (generated: {', '.join(DASHBOARDS)}; or a path to a .json file)")
    return gen.build(name, HEADER)


def running_prometheus(state_dir: Path) -> str:
    """URL of the Prometheus that `lab up` started under `state_dir`."""
    from ailab.local import process, state

    rec = state.services(state_dir).get("prometheus")
    if rec is None or not process.alive(rec.pid, rec.start_ticks):
        raise ValueError(
            f"no running Prometheus recorded under {state_dir} (start one with `lab up`, or pass --prometheus URL)"
        )
    return f"http://127.0.0.1:{rec.ports['http']}"


@app.command()
def snapshot(
    name: Annotated[
        str, typer.Argument(help="a generated dashboard (triton, gpu, host, loadtest, gateway) or a .json file")
    ],
    out: Annotated[Path, typer.Option("-o", "--out", help="directory for the PNGs and index.json")],
    start: Annotated[str, typer.Option("--from", help="now-15m, unix seconds or ISO 8601")] = "now-15m",
    end: Annotated[str, typer.Option("--to", help="now, unix seconds or ISO 8601")] = "now",
    prometheus: Annotated[str | None, typer.Option(help="Prometheus URL (default: the one `lab up` started)")] = None,
    var: Annotated[list[str] | None, typer.Option("--var", help="dashboard variable name=value; repeatable")] = None,
    panel: Annotated[list[str] | None, typer.Option("--panel", help="only this panel title; repeatable")] = None,
    state_dir: Annotated[Path | None, typer.Option(help="the local platform's state dir (default .lab)")] = None,
) -> None:
    """Render each panel of a dashboard to PNG by running its own queries against the live Prometheus
    (query_range, the dashboard's variables and units applied); exit 1 if a panel's query failed."""
    from ailab.contract.paths import REPO_ROOT
    from ailab.contract.paths import state_dir as default_state

    try:
        model = dashboard_json(name)
        prom = prometheus or running_prometheus(state_dir or default_state())
    except ValueError as exc:
        err.print(f"[bold red]error:[/] {exc}")
        raise typer.Exit(2) from None
    out.mkdir(parents=True, exist_ok=True)
    dash = out / "dashboard.json"
    dash.write_text(json.dumps(model, indent=1, sort_keys=True) + "\n")
    argv = [sys.executable, "-m", RENDERER, "--dashboard", str(dash), "--prometheus", prom, "--from", start]
    argv += ["--to", end, "-o", str(out)]
    argv += [a for v in var or [] for a in ("--var", v)] + [a for p in panel or [] for a in ("--panel", p)]
    rc = subprocess.run(argv, cwd=REPO_ROOT, check=False).returncode
    raise typer.Exit(rc)


def register(parent: typer.Typer) -> None:
    parent.add_typer(app, name="dashboards")
