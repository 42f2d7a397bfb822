"""`lab logs`: query the log collector's records (syslog-ng's JSON lines under the state dir) by service, model,
HTTP status and time range."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

console = Console()
err = Console(stderr=True)


def logs(
    service: Annotated[str | None, typer.Option(help="only this service (triton, haproxy, prometheus, ...)")] = None,
    model: Annotated[str | None, typer.Option(help="only records naming this model")] = None,
    status: Annotated[int | None, typer.Option(help="only gateway records with this HTTP status (100-599)")] = None,
    since: Annotated[str | None, typer.Option(help="collected at or after this ISO 8601 time")] = None,
    until: Annotated[str | None, typer.Option(help="collected before this ISO 8601 time")] = None,
    grep: Annotated[str | None, typer.Option(help="only records whose message contains this text")] = None,
    limit: Annotated[int, typer.Option(help="show the last N matches (0 = all)")] = 50,
    as_json: Annotated[bool, typer.Option("--json", help="one JSON record per line")] = False,
    count: Annotated[bool, typer.Option("--count", help="print only the number of matches")] = False,
    state_dir: Annotated[Path | None, typer.Option(help="the local platform's state dir (default .lab)")] = None,
) -> None:
    """Records the collector (service syslogng) gathered from the lab's services, filtered; newest last."""
    from ailab.contract.paths import state_dir as default_state
    from ailab.local.registry import PlatformError
    from ailab.local.services import syslogng

    if status is not None and not 100 <= status <= 599:
        err.print(f"[bold red]error:[/] --status {status}: allowed an HTTP status 100-599")
        raise typer.Exit(2)
    if limit < 0:
        err.print(f"[bold red]error:[/] --limit {limit}: allowed 0 (all) or more")
        raise typer.Exit(2)
    try:
        t0 = syslogng.parse_time(since, "--since") if since else None
        t1 = syslogng.parse_time(until, "--until") if until else None
    except PlatformError as exc:
        err.print(f"[bold red]error:[/] {exc}")
        raise typer.Exit(2) from None
    if t0 and t1 and t1 <= t0:
        err.print(f"[bold red]error:[/] --until {until} is not after --since {since}")
        raise typer.Exit(2)
    path = syslogng.records_path(state_dir or default_state())
    if not path.exists():
        err.print(f"[bold red]error:[/] no collected logs at {path} (start the collector: service syslogng)")
        raise typer.Exit(2)
    rows = syslogng.query(path, service, model, status, t0, t1, grep)
    if count:
        print(len(rows))
        return
    shown = rows[-limit:] if limit else rows
    if as_json:
        for r in shown:
            print(json.dumps(r, ensure_ascii=False))
        return
    t = Table("ts", "service", "model", "status", "request id", "message", title=f"lab logs ({len(rows)} match(es))")
    for r in shown:
        t.add_row(
            str(r.get("ts", "")),
            str(r.get("service", "")),
            str(r.get("model", "")),
            str(r.get("status", "")),
            str(r.get("request_id", "")),
            str(r.get("message", ""))[:120],
        )
    console.print(t)


def register(app: typer.Typer) -> None:
    app.command("logs")(logs)
