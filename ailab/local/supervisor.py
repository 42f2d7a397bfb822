"""Restart crashed services and count restarts: a thread for the Python API, a process for `lab up --supervise`.

Run as a process: `python -m ailab.local.supervisor --state-dir .lab` (started by `lab up --supervise`).
"""

from __future__ import annotations

import argparse
import signal
import threading
import time
from dataclasses import asdict
from pathlib import Path

from ailab.local import process, state
from ailab.local.registry import PlatformError
from ailab.local.spec import ServiceSpec


def _note(state_dir: Path, msg: str) -> None:
    log = state_dir / "logs" / "supervisor.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "a") as f:
        f.write(f"{time.strftime('%F %T')} {msg}\n")


def restart(state_dir: Path, rec: process.Running) -> process.Running:
    """Start a dead service again with its recorded command line and ports; the new record has restarts + 1."""
    process.kill_group(rec)  # helpers of the dead server may still hold its ports
    spec = ServiceSpec(
        name=rec.name,
        argv=rec.argv,
        ports=rec.ports,
        ready=rec.ready_url or (lambda: True),
        log=Path(rec.log),
        env=rec.env,
        cwd=Path(rec.cwd) if rec.cwd else None,
        stop_signal=rec.stop_signal,
        info=rec.info or {},
    )
    t0 = time.monotonic()
    while True:  # ports of a just-killed process can take a moment to be released
        try:
            new = process.launch(spec)
            break
        except PlatformError:
            if time.monotonic() - t0 > 10:
                raise
            time.sleep(0.1)
    process.wait_ready(new, spec)
    new.restarts = rec.restarts + 1
    return new


def check_once(state_dir: Path) -> list[str]:
    """Restart every recorded service that is no longer alive; the names restarted."""
    restarted = []
    for name, rec in state.services(state_dir).items():
        if process.alive(rec.pid, rec.start_ticks):
            continue
        _note(state_dir, f"{name}: pid {rec.pid} is gone; restarting")
        try:
            new = restart(state_dir, rec)
        except PlatformError as exc:
            _note(state_dir, f"{name}: restart failed: {exc}")
            continue
        with state.locked(state_dir) as data:
            if name in data["services"]:  # not removed by `lab down` meanwhile
                data["services"][name] = asdict(new)
        _note(state_dir, f"{name}: restarted as pid {new.pid} (restart #{new.restarts})")
        restarted.append(name)
    return restarted


def loop(state_dir: Path, stop: threading.Event, interval_s: float = 0.2) -> None:
    while not stop.is_set():
        check_once(state_dir)
        stop.wait(interval_s)


def start_thread(state_dir: Path, interval_s: float = 0.2) -> tuple[threading.Thread, threading.Event]:
    """Supervise from a daemon thread of this process (Python API); set the event to stop it."""
    ev = threading.Event()
    t = threading.Thread(target=loop, args=(state_dir, ev, interval_s), name="lab-supervisor", daemon=True)
    t.start()
    return t, ev


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--state-dir", type=Path, required=True)
    ap.add_argument("--interval", type=float, default=0.2, help="seconds between liveness checks")
    args = ap.parse_args()
    ev = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: ev.set())
    signal.signal(signal.SIGINT, lambda *_: ev.set())
    _note(args.state_dir, "supervisor started")
    loop(args.state_dir, ev, args.interval)
    _note(args.state_dir, "supervisor stopped")


if __name__ == "__main__":
    main()
