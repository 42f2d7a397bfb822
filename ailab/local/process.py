"""Start, probe and stop one local service process; everything a caller needs to say why it failed."""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import psutil

from ailab.local.registry import PlatformError
from ailab.local.spec import HOST, ServiceSpec


@dataclass
class Running:
    """What is recorded about a started service in .lab/platform.json (plain data, JSON-serialisable)."""

    name: str
    pid: int
    start_ticks: int  # start in clock ticks after boot (see start_ticks()): guards against a recycled PID
    ports: dict[str, int]
    log: str
    argv: list[str]
    env: dict[str, str]
    cwd: str | None
    stop_signal: str
    ready_url: str | None
    started_at: float
    restarts: int = 0
    info: dict[str, str] | None = None


CLOCK_TICKS = os.sysconf("SC_CLK_TCK")  # the unit of start_ticks

ERROR_LINE = re.compile(r"(?i)\b(error|unavailable|failed|traceback|exception)\b|^E\d{4} ")


def log_tail(path: str | Path, lines: int = 15) -> str:
    """Error-looking lines of the log's end (e.g. Triton's model status table), then its last `lines` lines."""
    try:
        text = Path(path).read_text(errors="replace").splitlines()
    except OSError:
        return "(no log)"
    if not text:
        return "(log is empty)"
    tail = text[-lines:]
    errors = [ln.strip() for ln in text[-300:-lines] if ERROR_LINE.search(ln)][-10:]
    head = ["error lines:", *errors, "last lines:"] if errors else []
    return "\n".join([*head, *tail])


def port_in_use(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((HOST, port))
        except OSError:
            return True
    return False


def _owner(port: int) -> str:
    try:
        for c in psutil.net_connections("tcp"):
            if c.laddr and c.laddr.port == port and c.status == psutil.CONN_LISTEN and c.pid:
                return f" by pid {c.pid} ({psutil.Process(c.pid).name()})"
    except (psutil.Error, OSError):
        pass
    return ""


def check_startable(spec: ServiceSpec) -> None:
    """Binary present and every port free, else a PlatformError naming the service, port and owner."""
    exe = spec.argv[0]
    if not (Path(exe).is_file() and os.access(exe, os.X_OK)) and shutil.which(exe) is None:
        raise PlatformError(f"service {spec.name}: binary {exe!r} not found or not executable (run `make setup`)")
    for role, port in spec.ports.items():
        if port_in_use(port):
            raise PlatformError(
                f"service {spec.name}: port {port} ({role}) on {HOST} is already in use{_owner(port)}; "
                "stop that process or start with free ports"
            )


def start_ticks(pid: int) -> int | None:
    """When `pid` started, in clock ticks after boot (field 22 of /proc/<pid>/stat); None when there is no such process.

    With the PID this names one process for the whole boot. psutil's create_time() is this plus the boot time that
    /proc/stat reports from the wall clock, so a clock step moves it: after one, a check against a recorded
    create_time took a running tritonserver for a recycled PID (CI: 'exited during start' with nothing in its log),
    and the kill that followed left it an unreaped zombie."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            stat = f.read()
    except OSError:
        return None
    # the command name (field 2) is in parentheses and may hold spaces or ')': split after the last ')'
    return int(stat[stat.rindex(b")") + 2 :].split()[19])


def alive(pid: int, ticks: int) -> bool:
    """True when `pid` is still the process we started (not exited, not a zombie, not a recycled PID)."""
    if start_ticks(pid) != ticks:
        return False
    try:
        if psutil.Process(pid).status() == psutil.STATUS_ZOMBIE:
            _reap(pid)
            return False
    except psutil.Error:
        return False
    return True


# The services this process started (launch), by PID, until they are reaped; then how each ended (Popen's
# returncode: negative = killed by that signal) until a message reads it.
_CHILDREN: dict[int, subprocess.Popen] = {}
_ENDED: dict[int, int] = {}


def _reap(pid: int, wait_s: float = 0.0) -> None:
    """Collect `pid` if it is a service this process started and it has exited, waiting up to `wait_s` for it to
    exit, so that it does not stay a zombie and how it ended is known; nothing for a process that is not our child."""
    proc = _CHILDREN.get(pid)
    if proc is not None:
        try:
            code = proc.wait(timeout=wait_s) if wait_s > 0 else proc.poll()
        except subprocess.TimeoutExpired:
            return
        if code is not None:
            _ENDED[pid] = code
            _CHILDREN.pop(pid, None)
        return
    deadline = time.monotonic() + wait_s  # another child of ours (the supervisor's process): collect it all the same
    while True:
        try:
            done, _ = os.waitpid(pid, os.WNOHANG)
        except ChildProcessError:
            return
        if done or time.monotonic() >= deadline:
            return
        time.sleep(0.02)


def ended(pid: int) -> str:
    """How a service this process started ended, for a message ('' when not known: not ours, or still running)."""
    code = _ENDED.pop(pid, None)
    if code is None:
        return ""
    if code < 0:
        try:
            return f"killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"killed by signal {-code}"
    return f"exit code {code}"


def probe_ok(url: str, timeout: float = 1.0) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as r:
            return r.status == 200
    except OSError:
        return False


def launch(spec: ServiceSpec) -> Running:
    """Start the process (own session, output to its log) and return its record; does not wait for readiness."""
    check_startable(spec)
    spec.log.parent.mkdir(parents=True, exist_ok=True)
    with open(spec.log, "ab") as log:
        log.write(f"\n=== lab: starting {spec.name} at {time.strftime('%F %T')}: {' '.join(spec.argv)}\n".encode())
        log.flush()
        # A new session, so that Ctrl-C in `lab` does not reach the service and stop() can signal its group.
        proc = subprocess.Popen(
            spec.argv,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env={**os.environ, **spec.env},
            cwd=spec.cwd,
            start_new_session=True,
        )
    _CHILDREN[proc.pid] = proc
    return Running(
        name=spec.name,
        pid=proc.pid,
        start_ticks=start_ticks(proc.pid) or 0,
        ports=dict(spec.ports),
        log=str(spec.log),
        argv=list(spec.argv),
        env=dict(spec.env),
        cwd=str(spec.cwd) if spec.cwd else None,
        stop_signal=spec.stop_signal,
        ready_url=spec.ready if isinstance(spec.ready, str) else None,
        started_at=time.time(),
        info=dict(spec.info),
    )


def wait_ready(rec: Running, spec: ServiceSpec | None = None, timeout: float | None = None) -> float:
    """Poll the readiness probe until it answers; seconds it took. Exit or timeout -> error with the log tail."""
    probe = spec.ready if spec else rec.ready_url
    limit = timeout or (spec.ready_timeout_s if spec else 60.0)
    t0 = time.monotonic()
    while time.monotonic() - t0 < limit:
        if not alive(rec.pid, rec.start_ticks):
            how = ended(rec.pid)
            raise PlatformError(
                f"service {rec.name}: exited during start (pid {rec.pid}{', ' + how if how else ''}); "
                f"last lines of {rec.log}:\n{log_tail(rec.log)}"
            )
        ok = probe_ok(probe) if isinstance(probe, str) else (probe() if probe else True)
        if ok:
            return time.monotonic() - t0
        time.sleep(0.1)
    stop(rec)
    raise PlatformError(
        f"service {rec.name}: not ready after {limit:.0f} s (probe {probe}); last lines of {rec.log}:\n"
        f"{log_tail(rec.log)}"
    )


def stop(rec: Running, grace_s: float = 15.0) -> bool:
    """Stop exactly this process (its stop signal, then SIGKILL to its process group); False if it was gone."""
    if not alive(rec.pid, rec.start_ticks):
        kill_group(rec)
        return False
    try:
        os.kill(rec.pid, getattr(signal, rec.stop_signal))
    except ProcessLookupError:
        return False
    t0 = time.monotonic()
    while time.monotonic() - t0 < grace_s and alive(rec.pid, rec.start_ticks):
        time.sleep(0.05)
    kill_group(rec)  # leftovers: the server itself after the grace period, helper processes it spawned
    t1 = time.monotonic()
    while time.monotonic() - t1 < 5 and alive(rec.pid, rec.start_ticks):
        time.sleep(0.05)
    return True


def kill_group(rec: Running) -> None:
    """SIGKILL what is left of the service's process group (helpers it spawned), never a recycled PID's group, and
    reap the service itself when it is our child."""
    now = start_ticks(rec.pid)
    if now is not None and now != rec.start_ticks:
        # the PID is another process's now; Linux gives no PID of a live process group to a new process, so the
        # service's group is empty and a group of that number is the new process's
        return
    for pid in psutil.pids():
        try:
            ticks = start_ticks(pid)
            if ticks is not None and ticks >= rec.start_ticks and os.getpgid(pid) == rec.pid:
                os.kill(pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            continue
    if now is not None:
        _reap(rec.pid, wait_s=5.0)
