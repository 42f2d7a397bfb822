"""Several AOTInductor packages held at once (d29.e3), built and loaded in child processes that report as they go.

Holding five distinct packages in one process died twice on the H200 with SIGSEGV and no Python traceback, and
took the rest of the GPU suite with it. So the parent process never loads a package here:

- a *build* child compiles one package per batch size (torch.export + AOTInductor) and prints one JSON line per
  package written;
- a *hold* child loads every package into one process (holding them at once is the point), runs each once as it
  is loaded, runs every held package again once all are loaded (checked against the eager model), then releases
  them, printing one JSON line before each step and one after it.

Every child runs with faulthandler on, so a native crash prints the Python stack to stderr, followed by the C-level
stack where `native_backtrace.c` could be built and preloaded. The parent keeps the
rows it got; a crash becomes a `Failure` naming the package, the step it was in, the signal (or exit status or
timeout) and the faulthandler stack: a result, not a lost run.

A third child, *build_hold*, builds and holds in one process: the path that crashed on the H200 (the packages were
compiled in the process that then loaded them), reported the same way, for comparison.

Run as `python -m workloads.engines.aot_hold build|hold|build_hold '<json spec>'`.
`AILAB_AOT_CRASH_AT=<package>:<step>` makes the child kill itself with SIGSEGV at that step (the crash tests use
it; nothing else sets it).
"""

from __future__ import annotations

import contextlib
import faulthandler
import hashlib
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

MIB = 2**20
MODES = ("build", "hold", "build_hold")
CRASH_HOOK = "AILAB_AOT_CRASH_AT"


class HoldSpecError(ValueError):
    """A bad child spec; the message names the field, the value and what is allowed."""


def check_spec(mode: str, spec: dict[str, Any]) -> dict[str, Any]:
    """`spec` if the child can act on it, else HoldSpecError naming the field."""
    if mode not in MODES:
        raise HoldSpecError(f"field mode = {mode!r}: allowed {', '.join(MODES)}")
    if spec.get("device") not in ("cpu", "cuda"):
        raise HoldSpecError(f"field device = {spec.get('device')!r}: allowed cpu, cuda")
    if not isinstance(spec.get("quick"), bool):
        raise HoldSpecError(f"field quick = {spec.get('quick')!r}: allowed true, false")
    if mode in ("build", "build_hold"):
        batches = spec.get("batches")
        if not (isinstance(batches, list) and batches and all(isinstance(b, int) and b >= 1 for b in batches)):
            raise HoldSpecError(f"field batches = {batches!r}: a non-empty list of ints >= 1")
        if len(set(batches)) != len(batches):
            raise HoldSpecError(f"field batches = {batches!r}: each batch size once (one package per batch size)")
        if not spec.get("outdir"):
            raise HoldSpecError(f"field outdir = {spec.get('outdir')!r}: the directory the packages are written to")
    else:
        pkgs = spec.get("packages")
        if not (isinstance(pkgs, list) and pkgs):
            raise HoldSpecError(f"field packages = {pkgs!r}: a non-empty list of {{path, batch}}")
        for i, p in enumerate(pkgs):
            if not (isinstance(p, dict) and p.get("path") and isinstance(p.get("batch"), int) and p["batch"] >= 1):
                raise HoldSpecError(f"field packages[{i}] = {p!r}: needs path (a .pt2 file) and batch (int >= 1)")
        names = [Path(p["path"]).name for p in pkgs]
        if len(set(names)) != len(names):
            raise HoldSpecError(f"field packages = {names}: each package file once (distinct names)")
    return spec


# --- the parent ----------------------------------------------------------------------------------------------------


@dataclass
class Failure:
    """How a child ended early: the package and step it was in, how it ended, and the stack it printed."""

    package: str
    step: str
    how: str  # "SIGSEGV (signal 11)", "exit status 1", "no result within 600 s"
    stack: str  # faulthandler's dump for a signal, the traceback for an exception, else the end of stderr

    def summary(self) -> str:
        return f"{self.how} at step {self.step} of {self.package}"


@dataclass
class ChildReport:
    """The JSON events a child printed before it ended, and the failure if it did not finish."""

    events: list[dict[str, Any]] = field(default_factory=list)
    failure: Failure | None = None
    wall_s: float = 0.0

    def of(self, kind: str) -> list[dict[str, Any]]:
        return [e for e in self.events if e.get("event") == kind]


def how_ended(returncode: int | None, timed_out: bool, timeout_s: float) -> str:
    """How a child process ended: the timeout, the signal by name ('SIGSEGV (signal 11)') or the exit status."""
    if timed_out:
        return f"no result within {timeout_s:g} s (killed)"
    if returncode is not None and returncode < 0:
        try:
            return f"{signal.Signals(-returncode).name} (signal {-returncode})"
        except ValueError:
            return f"signal {-returncode}"
    return f"exit status {returncode}"


def _stack(stderr: str, limit: int = 8000) -> str:
    """faulthandler's dump ("Fatal Python error: ...", then the native stack where native_backtrace.c is preloaded)
    if there is one, else the last traceback, else the end of stderr."""
    # faulthandler's list of loaded extension modules says nothing about where it crashed
    stderr = "\n".join(ln for ln in stderr.splitlines() if not ln.startswith("Extension modules: "))
    for marker in ("Fatal Python error", "Traceback (most recent call last)"):
        at = stderr.rfind(marker)
        if at >= 0:
            return stderr[at : at + limit].rstrip()
    return stderr[-limit:].rstrip()


def parse_events(stdout: str) -> list[dict[str, Any]]:
    """The child's JSON event lines, in order; other output (library warnings) is skipped."""
    events = []
    for line in stdout.splitlines():
        if line.startswith("{"):
            try:
                ev = json.loads(line)
            except json.JSONDecodeError:
                continue  # a line cut short by the crash
            if isinstance(ev, dict) and "event" in ev:
                events.append(ev)
    return events


def failure_of(
    events: list[dict[str, Any]], returncode: int | None, stderr: str, timed_out: bool, timeout_s: float
) -> Failure | None:
    """None when the child printed `done` and exited 0; else where it stopped, from the last step it announced."""
    if not timed_out and returncode == 0 and any(e["event"] == "done" for e in events):
        return None
    steps = [e for e in events if e["event"] == "step"]
    last = steps[-1] if steps else {"package": "-", "step": "start"}
    if not timed_out and returncode == 0:  # exited cleanly without saying done
        return Failure(last["package"], last["step"], "exit status 0 without a done line", _stack(stderr))
    return Failure(last["package"], last["step"], how_ended(returncode, timed_out, timeout_s), _stack(stderr))


def native_backtrace_lib() -> Path | None:
    """native_backtrace.c built once per source version into the temp directory (a C compiler is on every host that
    builds AOTInductor packages); None where it cannot be built: the children then print the Python stack only."""
    src = Path(__file__).with_name("native_backtrace.c")
    tag = hashlib.sha256(src.read_bytes()).hexdigest()[:12]
    lib = Path(tempfile.gettempdir()) / f"ailab-native-backtrace-{os.getuid()}-{tag}.so"
    if lib.exists():
        return lib
    tmp = lib.with_suffix(f".{os.getpid()}.tmp")
    for cc in dict.fromkeys(x for x in (os.environ.get("CC"), "cc", "gcc", "g++") if x):  # g++ reads it as C++: fine
        try:
            subprocess.run([cc, "-shared", "-fPIC", "-O1", "-o", str(tmp), str(src)], check=True, capture_output=True)
        except (OSError, subprocess.CalledProcessError):
            continue
        tmp.replace(lib)
        return lib
    return None


def run_child(
    mode: str, spec: dict[str, Any], timeout_s: float = 900, env: dict[str, str] | None = None
) -> ChildReport:
    """Run `python -m workloads.engines.aot_hold <mode> <spec>` and keep whatever it reported, crash or not; the
    child prints faulthandler's Python stack and, where native_backtrace.c could be built, the C-level stack."""
    check_spec(mode, spec)
    root = str(Path(__file__).resolve().parents[2])  # the repository: `-m workloads...` must import from it
    path = os.pathsep.join(x for x in (root, os.environ.get("PYTHONPATH", "")) if x)
    child_env = {**os.environ, "PYTHONFAULTHANDLER": "1", "PYTHONPATH": path}
    lib = native_backtrace_lib()
    if lib is not None:
        child_env["LD_PRELOAD"] = " ".join(x for x in (str(lib), os.environ.get("LD_PRELOAD", "")) if x)
    child_env.update(env or {})
    t0 = time.perf_counter()
    proc = subprocess.Popen(
        [sys.executable, "-m", "workloads.engines.aot_hold", mode, json.dumps(spec)],
        env=child_env,
        cwd=root,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,  # on timeout its compile workers are killed with it
    )
    timed_out = False
    try:
        out, err = proc.communicate(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        timed_out = True
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        out, err = proc.communicate()  # what it printed before the kill is kept
    events = parse_events(out)
    return ChildReport(events, failure_of(events, proc.returncode, err, timed_out, timeout_s), time.perf_counter() - t0)


LOADED_COLS = ("loaded", "package", "batch", "load_s", "first_call_ms")
CUDA_COLS = ("device_used_mib",)
CHECK_COLS = ("max_abs_err_vs_eager", "same_as_first_call", "status")


def held_rows(report: ChildReport, device: str) -> tuple[list[dict[str, Any]], list[str]]:
    """Rows of the packages_loaded table (one per package loaded, in load order, with the check made once all
    were held) and its columns; a failure adds a row naming the package, the step and how the child ended."""
    checks = {e["package"]: e for e in report.of("rerun")}
    cols = [*LOADED_COLS, *(CUDA_COLS if device == "cuda" else ()), "host_rss_delta_mib", *CHECK_COLS]
    rows = []
    for e in report.of("loaded"):
        c = checks.get(e["package"], {})
        rows.append(
            {
                **{k: e.get(k) for k in cols if k in e},
                "max_abs_err_vs_eager": c.get("max_abs_err_vs_eager"),
                "same_as_first_call": c.get("same_as_first_call"),
                "status": "ok" if c else "loaded, not re-run",
            }
        )
    f = report.failure
    if f is not None:
        batch = next((e.get("batch") for e in report.of("step") if e["package"] == f.package and "batch" in e), None)
        rows.append(
            {
                "loaded": len(report.of("loaded")),
                "package": f.package,
                "batch": batch,
                "status": f"child ended: {f.how} at step {f.step}",
            }
        )
    return rows, cols


# --- the children --------------------------------------------------------------------------------------------------


def _emit(ev: dict[str, Any]) -> None:
    print(json.dumps(ev), flush=True)


def _step(package: str, step: str, **extra: Any) -> None:
    """Announce a step before doing it (the parent names the last one announced if the process dies in it)."""
    _emit({"event": "step", "package": package, "step": step, **extra})
    if os.environ.get(CRASH_HOOK) == f"{package}:{step}":
        os.kill(os.getpid(), signal.SIGSEGV)


def _rss_mib() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / MIB


def _used_mib(cuda: bool) -> float:
    if not cuda:
        return 0.0
    import torch

    torch.cuda.synchronize()
    free, total = torch.cuda.mem_get_info()
    return (total - free) / MIB


def cnn(device: str, quick: bool, seed: int = 0) -> tuple[Any, tuple[int, int, int], Any]:
    """(the d29 SmallCNN in eval mode on `device`, sample shape C×H×W, dtype): FP16 on CUDA, FP32 on the CPU."""
    import torch

    from workloads.engines.models import SmallCNN

    torch.manual_seed(seed)
    dt = torch.float16 if device == "cuda" else torch.float32
    model = (SmallCNN(8, 10) if quick else SmallCNN(32, 1000)).to(device, dt).eval().requires_grad_(False)
    size = 32 if quick else 224
    return model, (3, size, size), dt


def build(spec: dict[str, Any], done: bool = True) -> list[dict[str, Any]]:
    """Compile one package per batch size into spec['outdir'], one `built` line per package; the packages."""
    import torch

    from workloads.engines import aot

    dev = spec["device"]
    model, sample, dt = cnn(dev, spec["quick"], spec.get("seed", 0))
    pkgs = []
    for b in spec["batches"]:
        name = f"cnn_b{b}.pt2"
        _step(name, "build", batch=b)
        pkg = aot.build(model, torch.randn(b, *sample, device=dev, dtype=dt), Path(spec["outdir"]) / name, dev)
        _emit({"event": "built", **pkg.as_dict(), "package": name, "file": str(pkg.path)})
        pkgs.append({"path": str(pkg.path), "batch": b})
    if done:
        _emit({"event": "done"})
    return pkgs


def build_hold(spec: dict[str, Any]) -> None:
    """Build, then hold, in this one process: the path that crashed on the H200 (compile and load in the process
    that holds the packages), step by step, to compare with the separate build and hold children."""
    hold({**spec, "packages": build(spec, done=False)})


def hold(spec: dict[str, Any]) -> None:
    """Load every package into this one process, run each as it is loaded, run all again while all are held
    (checked against the eager model and the first call), then release them; a JSON line before and after each step.
    """
    import gc

    import torch

    from workloads.engines import aot
    from workloads.engines.timing import wall_once

    dev = spec["device"]
    cuda = dev == "cuda"
    _step("-", "init")
    if cuda:
        torch.cuda.init()
        torch.empty(1, device="cuda")  # the context exists before the baseline: it is not counted
    model, sample, dt = cnn(dev, spec["quick"], spec.get("seed", 0))
    base, rss0 = _used_mib(cuda), _rss_mib()
    _emit({"event": "baseline", "device_used_mib": base, "host_rss_mib": rss0})
    _emit({"event": "libstdcxx", "note": aot.libstdcxx_global()})  # what aot.load does first: said once, for notes
    gen = torch.Generator().manual_seed(1)
    held = []
    with torch.no_grad():
        for p in spec["packages"]:
            name, b = Path(p["path"]).name, p["batch"]
            x = torch.randn(b, *sample, generator=gen).to(dev, dt)
            _step(name, "load", batch=b)
            runner, load_s = aot.load(Path(p["path"]), dev)
            _step(name, "first_run", batch=b)
            y, first_s = wall_once(lambda r=runner, x=x: r(x), dev)
            held.append((name, runner, x, y.clone()))
            _emit(
                {
                    "event": "loaded",
                    "loaded": len(held),
                    "package": name,
                    "batch": b,
                    "load_s": load_s,
                    "first_call_ms": first_s * 1e3,
                    "device_used_mib": _used_mib(cuda) - base,
                    "host_rss_delta_mib": _rss_mib() - rss0,
                }
            )
        for name, runner, x, y0 in held:
            _step(name, "run_while_all_held")
            y = runner(x)
            _emit(
                {
                    "event": "rerun",
                    "package": name,
                    "same_as_first_call": bool(torch.equal(y, y0)),
                    "max_abs_err_vs_eager": float((y.float() - model(x).float()).abs().max()),
                }
            )
    _step("-", "release")
    del held, runner
    gc.collect()
    _emit({"event": "released", "device_used_mib": _used_mib(cuda) - base})
    _emit({"event": "done"})
    _step("-", "exit")  # a crash while the interpreter shuts down is still a failure, named as such


if __name__ == "__main__":
    faulthandler.enable(all_threads=True)
    mode, job = sys.argv[1], json.loads(sys.argv[2])
    check_spec(mode, job)
    {"build": build, "hold": hold, "build_hold": build_hold}[mode](job)
