"""The quick runs' platform pool: one `lab run --quick` keeps the tritonservers its experiments started and hands
one to a later experiment that asks for the same server, instead of starting (4-9 s) and stopping (2-3 s) another.

    with PlatformPool() as pool:                       # `lab run --quick` owns one; closed when the run ends
        ctx = Context(..., quick=True, platform=pool.factory("d17.e2"))
        with ctx.platform(services=["triton"], state_dir=..., options=opts, reuse=True) as p: ...
        pool.reused("d17.e2")                          # -> notes for the result: which server came from where

A call is served from the pool only when its caller allows it (`reuse=True`: the serving harness does for model
control mode `none`, unsupervised, without a response cache: nothing the experiment does changes the server) and
a kept, idle platform matches: the same services, supervision and options, and a model repository holding every
model of the requested one byte for byte (other models may sit beside them, idle). A reused server's counters, log
and scheduling state carry over from the experiment that started it; the runner writes that into the result's
notes. Full-size runs never get a pool: their results must not depend on what ran before.

Tritonservers the pool does not keep (not reusable, or more than `keep` idle) are killed, not shut down: the
experiment that used one is done with it, and a clean shutdown is 3-4 s here of python stubs finalising and the
server polling them once a second, on the 2 cores the next experiment measures on (and at the run's end, time that
`lab run` waits for). The kill takes the server's whole process group (its stubs) and then removes the shared-memory
regions the stubs were given (/dev/shm/triton_python_backend_shm_region_*, named on their command lines), which a
clean shutdown would have removed; it runs in the background. `close()` (also at interpreter exit) kills every kept
one too and waits until all are gone, stubs and their regions included.

`prestart` (the run's experiments' `quick_services`, see the catalogue's Binding) starts services when the run begins,
in the background, with the options in PRESTART, kept idle for the first experiment that asks for one with exactly
those options (`reuse=True`). Prometheus 2.42 hands its scrapers their targets on 5 s ticks counted from its start,
so a fresh one scrapes nothing for its first ~5.5 s; started with the run, that wait is over before an experiment
needs it. It starts with one spare target (ailab.contract.ports: a reserved port that nothing binds yet) in its
file_sd directory: the experiment that claims it starts its tritonserver's metrics endpoint there and is scraped
from the server's first interval on, where a target written later would wait for the next tick (0-5 s).
"""

from __future__ import annotations

import atexit
import hashlib
import json
import shutil
import tempfile
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psutil

from ailab.contract.ports import reserved_port, write_spare_target
from ailab.local import process
from ailab.local.platform import Platform

REPOSITORY = "triton.model_repository"
LABELS = {"triton": "tritonserver"}
# Options of the services `prestart` starts: an experiment borrows one only when it asks for exactly these (the
# quick runs of the experiments that declare quick_services do: tests/unit/multimodel/test_multimodel_quick_params.py
# holds them together). 500ms: the quick runs' scrape interval.
PRESTART: dict[str, dict[str, Any]] = {
    "prometheus": {"prometheus.scrape": [], "prometheus.scrape_interval": "500ms"},
}
SPARE_JOB = "triton"  # the spare target's job label: the tritonserver whose metrics port it names
PRESTARTED = "the run's start (quick_services)"  # the owner of a prestarted platform, as the notes name it
SHM_DIR = Path("/dev/shm")
SHM_PREFIX = "triton_python_backend_shm_region_"  # the python backend's region per stub, its 3rd argument


def tree_digest(path: Path) -> str:
    """sha256 over the relative paths and bytes of every file under `path` (bytecode caches left out: they are
    derived from the source beside them and may be written by the server itself)."""
    h = hashlib.sha256()
    for f in sorted(p for p in path.rglob("*") if p.is_file() and "__pycache__" not in p.parts):
        h.update(str(f.relative_to(path)).encode() + b"\0")
        h.update(f.read_bytes())
    return h.hexdigest()


def _plain(value: Any) -> Any:
    """An option value as JSON, with an absolute path replaced by a digest of what it holds."""
    if isinstance(value, Path | str) and Path(value).is_absolute() and Path(value).exists():
        p = Path(value)
        return {"dir": tree_digest(p)} if p.is_dir() else {"file": hashlib.sha256(p.read_bytes()).hexdigest()}
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in sorted(value.items())}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


@dataclass(frozen=True)
class Key:
    """What a platform must match to be reused: everything but the repository exactly; the repository per model."""

    rest: str  # sha256 of services, supervision and every option but the model repository
    models: tuple[tuple[str, str], ...]  # (model directory, digest of its files), sorted

    def serves(self, wanted: Key) -> bool:
        return self.rest == wanted.rest and set(wanted.models) <= set(self.models)


def platform_key(services: list[str], options: dict[str, Any], supervise: bool) -> Key:
    rest = {"services": sorted(services), "supervise": supervise}
    rest["options"] = _plain({k: v for k, v in options.items() if k != REPOSITORY})
    models: tuple[tuple[str, str], ...] = ()
    if options.get(REPOSITORY) is not None:
        repo = Path(options[REPOSITORY])
        models = tuple(sorted((d.name, tree_digest(d)) for d in repo.iterdir() if d.is_dir()))
    digest = hashlib.sha256(json.dumps(rest, sort_keys=True, default=str).encode()).hexdigest()
    return Key(digest, models)


@dataclass
class Kept:
    platform: Platform
    key: Key
    owner: str  # the experiment that started it
    services: list[str]
    busy: bool = True
    idle_since: float = 0.0


class PlatformPool:
    """Platforms kept for reuse within one quick run, and the background stops of the rest."""

    def __init__(self, keep: int = 4, prestart: Sequence[str] = ()) -> None:
        unknown = sorted(set(prestart) - set(PRESTART))
        if unknown:
            raise ValueError(f"prestart {unknown}: allowed {', '.join(PRESTART)}")
        self.keep = keep  # idle platforms kept at most; the least recently used beyond that are stopped
        self._kept: list[Kept] = []
        self._notes: dict[str, list[str]] = {}
        self._stopping: list[threading.Thread] = []
        self._lock = threading.Lock()
        self._closed = False
        self._dirs: list[Path] = []  # state dirs of prestarted platforms, removed at close
        self._prestart_errors: dict[str, str] = {}
        self._prestarting = {
            s: threading.Thread(target=self._prestart, args=(s,), name=f"quick-pool-{s}", daemon=True)
            for s in sorted(set(prestart))
        }
        atexit.register(self.close)
        for t in self._prestarting.values():
            t.start()

    def _prestart(self, service: str) -> None:
        """Start `service` with PRESTART's options (a Prometheus with its spare target) and keep it idle."""
        options = PRESTART[service]
        state_dir = Path(tempfile.mkdtemp(prefix=f"ailab-quick-{service}-"))
        self._dirs.append(state_dir)
        try:
            if service == "prometheus":  # in its file_sd directory before it starts: a target from its first tick
                write_spare_target(state_dir / "prometheus" / "targets", reserved_port(), SPARE_JOB)
            p = Platform(services=[service], state_dir=state_dir, free_ports=True, options=options)
            p.up()
        except Exception as exc:  # noqa: BLE001 - the experiment then starts its own; its notes say why
            self._prestart_errors[service] = f"{type(exc).__name__}: {exc}"
            return
        kept = Kept(p, platform_key([service], options, False), PRESTARTED, [service], busy=False)
        kept.idle_since = time.monotonic()
        with self._lock:
            if not self._closed:
                self._kept.append(kept)
                return
        self._retire(p)

    # --- what experiments get ------------------------------------------------------------------------------
    def factory(self, experiment_id: str) -> Any:
        """The PlatformFactory for one experiment's Context."""

        def start(
            services: list[str],
            state_dir: Path,
            options: dict[str, Any] | None = None,
            supervise: bool = False,
            reuse: bool = False,
        ) -> Any:
            return self.platform(experiment_id, services, state_dir, options or {}, supervise, reuse)

        return start

    def reused(self, experiment_id: str) -> list[str]:
        """Notes for the experiment's result: every platform it got from the pool, and from which experiment."""
        return list(self._notes.get(experiment_id, []))

    @contextmanager
    def platform(
        self,
        experiment_id: str,
        services: list[str],
        state_dir: Path,
        options: dict[str, Any],
        supervise: bool = False,
        reuse: bool = False,
    ) -> Iterator[Platform]:
        if self._closed:
            raise RuntimeError("the quick platform pool is closed: it served a `lab run` that has ended")
        state_dir = Path(state_dir)
        # a kept platform living in this state dir would be taken by Platform.up() for this one's: let it go first
        self._retire_where(lambda k: k.platform.state_dir.resolve() == state_dir.resolve())
        key = platform_key(services, options, supervise) if reuse else None
        if key is not None and len(services) == 1 and (t := self._prestarting.get(services[0])):
            t.join()  # the one being started for the run may be this one
        kept = self._take(key) if key is not None else None
        if kept is not None:
            kept.platform.reused_from = kept.owner
            self._note(experiment_id, kept, key)  # type: ignore[arg-type]
        else:
            if reuse and len(services) == 1 and (why := self._prestart_errors.get(services[0])):
                self._notes.setdefault(experiment_id, []).append(
                    f"{services[0]}: the run's own, started when the run began, failed ({why}): this one is the "
                    "experiment's own"
                )
            p = Platform(services=services, state_dir=state_dir, free_ports=True, options=options, supervise=supervise)
            p.up()
            kept = Kept(p, key or Key("", ()), experiment_id, list(services))
        ok = False
        try:
            yield kept.platform
            ok = True
        finally:
            self._give_back(kept, keep=ok and key is not None)

    # --- bookkeeping -------------------------------------------------------------------------------------
    def _take(self, want: Key) -> Kept | None:
        """The idle kept platform that serves `want` with the fewest extra models (alive, answering), or None."""
        with self._lock:
            fits = [k for k in self._kept if not k.busy and k.key.serves(want)]
            fits.sort(key=lambda k: len(k.key.models))
            for k in fits:
                if _healthy(k.platform):
                    k.busy = True
                    return k
        self._retire_where(lambda k: not k.busy and k.key.serves(want) and not _healthy(k.platform))
        return None

    def _note(self, experiment_id: str, kept: Kept, want: Key) -> None:
        label = " + ".join(LABELS.get(s, s) for s in kept.services)
        extra = sorted({m for m, _ in kept.key.models} - {m for m, _ in want.models})
        also = f"; it also serves {', '.join(extra)}, idle here" if extra else ""
        if kept.owner == PRESTARTED:
            line = (
                f"{label} started when the run began (quick pool, the experiment's quick_services) and lent here with "
                "the same options; what it scraped before this experiment stays in its data"
            )
        else:
            line = (
                f"{label} reused from {kept.owner} (quick pool: same options, every model of this repository byte "
                f"for byte{also}); its counters, log and scheduler state carry over from there"
            )
        lines = self._notes.setdefault(experiment_id, [])
        if line not in lines:
            lines.append(line)

    def _give_back(self, kept: Kept, keep: bool) -> None:
        with self._lock:
            if keep and not self._closed and _healthy(kept.platform):
                kept.busy, kept.idle_since = False, time.monotonic()
                kept.platform.reused_from = None
                if kept not in self._kept:
                    self._kept.append(kept)
                idle = sorted((k for k in self._kept if not k.busy), key=lambda k: k.idle_since)
                surplus = idle[: max(0, len(idle) - self.keep)]
            else:
                surplus = [kept]
            for k in surplus:
                if k in self._kept:
                    self._kept.remove(k)
        for k in surplus:
            self._retire(k.platform)

    def _retire_where(self, pred: Any) -> None:
        with self._lock:
            gone = [k for k in self._kept if not k.busy and pred(k)]
            for k in gone:
                self._kept.remove(k)
        for k in gone:
            self._retire(k.platform)

    def _retire(self, p: Platform) -> None:
        """End a platform: a tritonserver-only one is killed in the background (see the module docstring), the rest
        stopped now, in order (a Prometheus must stop before its remote-write target, which an enclosing platform may
        hold)."""
        if set(p.names) != {"triton"}:
            p.down()
            return
        recs = p.release()
        t = threading.Thread(target=_kill_all, args=(recs,), name="quick-pool-kill", daemon=True)
        t.start()
        with self._lock:
            self._stopping = [x for x in self._stopping if x.is_alive()] + [t]

    # --- the end of the run ------------------------------------------------------------------------------
    def close(self) -> None:
        """Kill every kept platform and wait for every background kill: nothing of the run stays behind."""
        with self._lock:
            self._closed = True
            kept, self._kept = self._kept, []
        for t in self._prestarting.values():  # one still starting retires itself once it is up
            t.join()
        for k in kept:
            self._retire(k.platform)
        with self._lock:
            stopping, self._stopping = self._stopping, []
        for t in stopping:
            t.join()
        for d in self._dirs:
            shutil.rmtree(d, ignore_errors=True)
        atexit.unregister(self.close)

    def __enter__(self) -> PlatformPool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def pids(self) -> list[int]:
        """The server PIDs of the kept platforms (tests check they are gone after close)."""
        with self._lock:
            return [r.pid for k in self._kept for r in k.platform.records()]


def _healthy(p: Platform) -> bool:
    """Every service of the platform still runs and answers its readiness probe."""
    try:
        recs = p.records()
    except Exception:  # noqa: BLE001 - an unreadable state file: not reusable
        return False
    return len(recs) == len(p.names) and all(
        process.alive(r.pid, r.start_ticks) and (r.ready_url is None or process.probe_ok(r.ready_url)) for r in recs
    )


def _kill_all(recs: list[process.Running]) -> None:
    for r in recs:
        kill(r)


def kill(rec: process.Running, timeout_s: float = 10.0) -> None:
    """SIGKILL a tritonserver's process group (the server and its python stubs), wait until every one is gone, then
    remove the shared-memory regions its stubs were given. Never touches a recycled PID: `process.alive` checks the
    start time, and only processes of the server's own group are killed."""
    procs: list[psutil.Process] = []
    if process.alive(rec.pid, rec.start_ticks):
        try:
            root = psutil.Process(rec.pid)
            procs = [root, *root.children(recursive=True)]
        except psutil.Error:
            procs = []
    regions = sorted({a for p in procs for a in _cmdline(p) if a.startswith(SHM_PREFIX) and "/" not in a})
    process.kill_group(rec)  # SIGKILL to every process of the server's group (its stubs); reaps the server
    deadline = time.monotonic() + timeout_s
    while any(_running(p) for p in procs) and time.monotonic() < deadline:
        time.sleep(0.02)
    process.alive(rec.pid, rec.start_ticks)  # reaps the server (our child) now that it is a zombie
    for r in regions:
        (SHM_DIR / r).unlink(missing_ok=True)


def _running(p: psutil.Process) -> bool:
    """Still running: not gone and not a zombie (a killed stub stays one until whoever adopted it reaps it)."""
    try:
        return p.is_running() and p.status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


def _cmdline(p: psutil.Process) -> list[str]:
    try:
        return p.cmdline()
    except psutil.Error:
        return []
