"""The local platform's record of what it started: .lab/platform.json (PIDs, ports, logs, restarts)."""

from __future__ import annotations

import fcntl
import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict
from pathlib import Path
from typing import Any

import psutil

from ailab.local.process import CLOCK_TICKS, Running


def state_file(state_dir: Path) -> Path:
    return state_dir / "platform.json"


@contextmanager
def locked(state_dir: Path) -> Iterator[dict[str, Any]]:
    """Read-modify-write the state file under an exclusive lock (the supervisor writes it concurrently)."""
    state_dir.mkdir(parents=True, exist_ok=True)
    with open(state_dir / "platform.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        path = state_file(state_dir)
        data = json.loads(path.read_text()) if path.exists() else {}
        data.setdefault("services", {})
        yield data
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(data, indent=1, sort_keys=True))
        tmp.replace(path)


def read(state_dir: Path) -> dict[str, Any]:
    path = state_file(state_dir)
    data = json.loads(path.read_text()) if path.exists() else {}
    data.setdefault("services", {})
    return data


def services(state_dir: Path) -> dict[str, Running]:
    return {n: Running(**_current(r)) for n, r in read(state_dir)["services"].items()}


def supervisor(state_dir: Path) -> Running | None:
    """The recorded supervisor process (`lab up --supervise`), as a record that process.stop can take."""
    sup = read(state_dir).get("supervisor")
    if not sup:
        return None
    sup = _current(sup)
    return Running("supervisor", sup["pid"], sup["start_ticks"], {}, "", [], {}, None, "SIGTERM", None, 0)


def _current(rec: dict[str, Any]) -> dict[str, Any]:
    """A record as Running takes it. Records written before the start was kept in ticks after boot hold psutil's
    wall-clock create_time instead: it becomes ticks against the boot time of now, which is what it was unless the
    clock stepped since (then the service reads as gone, and nothing of it is killed: see process.kill_group)."""
    if "start_ticks" in rec or "create_time" not in rec:
        return rec
    out = {k: v for k, v in rec.items() if k != "create_time"}
    out["start_ticks"] = round((rec["create_time"] - psutil.boot_time()) * CLOCK_TICKS)
    return out


def put(state_dir: Path, rec: Running) -> None:
    with locked(state_dir) as data:
        data["services"][rec.name] = asdict(rec)


def drop(state_dir: Path, name: str) -> None:
    with locked(state_dir) as data:
        data["services"].pop(name, None)
