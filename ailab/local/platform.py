"""The local platform: start a week's (or an explicit list of) services, report them, stop exactly them.

Python API used by experiments and test fixtures:

    with Platform(services=["triton"], state_dir=tmp, free_ports=True,
                  options={"triton.model_repository": repo}) as p:
        url = p.url("triton", "http")
"""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from ailab.contract import paths
from ailab.local import process, registry, state, supervisor
from ailab.local.registry import PlatformError
from ailab.local.spec import HOST, PlatformContext


@dataclass
class UpReport:
    started: dict[str, float] = field(default_factory=dict)  # name -> seconds from launch to ready
    already: list[str] = field(default_factory=list)  # found running, left alone
    total_s: float = 0.0  # wall time of up(), s


class Platform:
    """Local services as processes; a context manager that starts them on enter and stops them on exit."""

    def __init__(
        self,
        week: int = 1,
        services: list[str] | None = None,
        state_dir: Path | None = None,
        free_ports: bool = False,
        options: dict[str, Any] | None = None,
        supervise: bool = False,
        supervise_in_process: bool = True,
    ) -> None:
        self.names = services if services is not None else registry.week_services(week)
        self.state_dir = Path(state_dir or paths.state_dir())
        self.ctx = PlatformContext(week=week, state_dir=self.state_dir, free_ports=free_ports, options=options or {})
        self.supervise = supervise
        self.supervise_in_process = supervise_in_process
        self._sup: tuple[threading.Thread, threading.Event] | None = None
        self.reused_from: str | None = None  # the experiment that started it, while a quick run's pool lends it out

    # --- lifecycle -------------------------------------------------------------------------------------
    def up(self) -> UpReport:
        """Start what is not running yet, in dependency order, each until its readiness probe answers."""
        t0 = time.monotonic()
        rep = UpReport()
        running = {n: r for n, r in state.services(self.state_dir).items() if process.alive(r.pid, r.start_ticks)}
        for n, r in running.items():
            for role, port in r.ports.items():
                self.ctx.ports[f"{n}.{role}"] = port
        todo = [n for n in self.names if n not in running]
        rep.already = [n for n in self.names if n in running]
        specs = {n: registry.build_spec(n, self.ctx) for n in todo}
        for n in rep.already:
            specs.setdefault(n, None)  # type: ignore[arg-type]  # satisfied dependency, nothing to start
        started: list[process.Running] = []
        try:
            for n in registry.order(todo, {k: v for k, v in specs.items()}):  # type: ignore[arg-type]
                spec = specs[n]
                if spec is None:
                    continue
                rec = process.launch(spec)
                state.put(self.state_dir, rec)
                started.append(rec)
                rep.started[n] = process.wait_ready(rec, spec)
        except PlatformError:
            for rec in reversed(started):  # leave nothing half-started behind
                process.stop(rec)
                state.drop(self.state_dir, rec.name)
            raise
        if self.supervise:
            self._start_supervisor()
        rep.total_s = time.monotonic() - t0
        return rep

    def down(self) -> list[str]:
        """Stop the supervisor, then exactly the recorded processes of this platform's services; names stopped."""
        self._stop_supervisor()
        stopped = []
        for name, rec in state.services(self.state_dir).items():
            if name not in self.names:
                continue
            if process.stop(rec):
                stopped.append(name)
            state.drop(self.state_dir, name)
        return stopped

    def release(self) -> list[process.Running]:
        """Stop the supervisor and forget this platform's processes without stopping them; their records, for a
        caller that stops them itself (the quick pool, in the background). The state dir is free for a new platform
        at once."""
        self._stop_supervisor()
        recs = self.records()
        for rec in recs:
            state.drop(self.state_dir, rec.name)
        return recs

    def __enter__(self) -> Platform:
        self.up()
        return self

    def __exit__(self, *exc: object) -> None:
        self.down()

    # --- supervision ------------------------------------------------------------------------------------
    def _start_supervisor(self) -> None:
        if self.supervise_in_process:
            if self._sup is None:
                self._sup = supervisor.start_thread(self.state_dir)
            return
        sup = state.supervisor(self.state_dir)
        if sup and process.alive(sup.pid, sup.start_ticks):
            return
        log = open(self.state_dir / "logs" / "supervisor.out", "ab")  # noqa: SIM115 - handed to the child
        p = subprocess.Popen(
            [sys.executable, "-m", "ailab.local.supervisor", "--state-dir", str(self.state_dir)],
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
        with state.locked(self.state_dir) as data:
            data["supervisor"] = {"pid": p.pid, "start_ticks": process.start_ticks(p.pid) or 0}

    def _stop_supervisor(self) -> None:
        if self._sup is not None:
            self._sup[1].set()
            self._sup[0].join(timeout=30)
            self._sup = None
        sup = state.supervisor(self.state_dir)
        if sup:
            process.stop(sup, grace_s=30)
            with state.locked(self.state_dir) as data:
                data.pop("supervisor", None)

    # --- queries ----------------------------------------------------------------------------------------
    def record(self, service: str) -> process.Running:
        recs = state.services(self.state_dir)
        if service not in recs:
            raise PlatformError(f"service {service!r}: not running (running: {', '.join(recs) or 'none'})")
        return recs[service]

    def records(self) -> list[process.Running]:
        """The records of this platform's services (as the state file holds them)."""
        return [r for n, r in state.services(self.state_dir).items() if n in self.names]

    def port(self, service: str, role: str) -> int:
        return self.record(service).ports[role]

    def url(self, service: str, role: str = "http") -> str:
        return f"http://{HOST}:{self.port(service, role)}"

    def address(self, service: str, role: str) -> str:
        """host:port, the form gRPC clients and perf_analyzer take."""
        return f"{HOST}:{self.port(service, role)}"

    def restarts(self, service: str) -> int:
        return self.record(service).restarts

    @staticmethod
    def is_running(rec: process.Running) -> bool:
        """Whether the process of a record (kept from before a kill, say) still runs: not exited, not a zombie,
        not a recycled PID."""
        return process.alive(rec.pid, rec.start_ticks)


def status(state_dir: Path | None = None) -> list[dict[str, Any]]:
    """Every recorded service with pid, state (running/dead), ports, log, uptime and restarts."""
    sd = Path(state_dir or paths.state_dir())
    out = []
    for _name, rec in state.services(sd).items():
        ok = process.alive(rec.pid, rec.start_ticks)
        row = asdict(rec)
        row.update(state="running" if ok else "dead", uptime_s=round(time.time() - rec.started_at, 1) if ok else 0.0)
        out.append(row)
    sup = state.supervisor(sd)
    if sup:
        out.append(
            {
                "name": "supervisor",
                "pid": sup.pid,
                "state": "running" if process.alive(sup.pid, sup.start_ticks) else "dead",
                "ports": {},
                "log": str(sd / "logs" / "supervisor.log"),
                "restarts": 0,
                "uptime_s": 0.0,
            }
        )
    return out
