"""The engines GPU suite's runner loop: each selected experiment in its own Python process, so that one's native
crash (d29.e3's SIGSEGV once stopped d33.e4 and d53.e3 from running) is reported with its signal and the next runs.

`python -m tools.gpucall.engines_suite SEL [--budget S] [--quick]` resolves SEL (ids, days, weeks) once, then runs
each experiment as `python -X faulthandler -m tools.gpucall.engines_suite --one ID` with what is left of the budget
as its limit. The children write to this process's stdout (the suite's run.log): the runner's one-line outcome,
or, for a crash, faulthandler's Python stack and the C-level stack (workloads/engines/native_backtrace.c,
preloaded where a C compiler could build it) followed by this loop's line naming the signal.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TextIO

from workloads.engines.aot_hold import how_ended

MIN_START_S = 20  # an experiment is not started with less than this left of the budget


@dataclass(frozen=True)
class Ran:
    exp_id: str
    returncode: int | None  # None: not started
    how: str  # "" when the child exited 0 (its own line says ok / skipped / failed)

    def line(self) -> str:
        return f"{self.exp_id} {self.how}"


def describe(returncode: int) -> str:
    """What a child's exit status says, for the suite's log: '' for 0."""
    if returncode == 0:
        return ""
    if returncode < 0:
        how = how_ended(returncode, False, 0)
        return f"crashed: {how}; its Python stack (faulthandler) is in the log above"
    return f"runner process exited {returncode}"


def kill_group(p: subprocess.Popen) -> None:
    """SIGKILL the process group `p` leads (it was started with start_new_session) and reap `p`."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(p.pid, signal.SIGKILL)
    p.wait()


def child_env() -> dict[str, str]:
    """This environment with faulthandler on and, where it can be built, native_backtrace.c preloaded: a crashing
    child prints its Python stack and then its C-level stack."""
    from workloads.engines.aot_hold import native_backtrace_lib

    env = {**os.environ, "PYTHONFAULTHANDLER": "1"}
    lib = native_backtrace_lib()
    if lib is not None:
        env["LD_PRELOAD"] = " ".join(x for x in (str(lib), os.environ.get("LD_PRELOAD", "")) if x)
    return env


def child_argv(exp_id: str, quick: bool) -> list[str]:
    return [sys.executable, "-X", "faulthandler", "-m", "tools.gpucall.engines_suite", "--one", exp_id] + (
        ["--quick"] if quick else []
    )


def run_each(
    ids: Sequence[str],
    budget_s: float,
    quick: bool = False,
    argv: Callable[[str, bool], list[str]] = child_argv,
    out: TextIO | None = None,
) -> list[Ran]:
    """Run every experiment in its own process, one after the other, within `budget_s` seconds in all."""
    out = out or sys.stdout
    env = child_env()
    deadline = time.monotonic() + budget_s
    ran = []
    for exp_id in ids:
        left = deadline - time.monotonic()
        if left < MIN_START_S:
            r = Ran(exp_id, None, f"not started: {left:.0f} s of the budget left")
        else:
            print(f"== {exp_id} (limit {left:.0f} s)", file=out, flush=True)
            # its own process group: on timeout the experiment's own children (compile workers, measuring
            # processes) are killed with it instead of running on into the next experiment
            p = subprocess.Popen(
                argv(exp_id, quick), stdout=out, stderr=subprocess.STDOUT, env=env, start_new_session=True
            )
            try:
                p.wait(timeout=left)
                r = Ran(exp_id, p.returncode, describe(p.returncode))
            except subprocess.TimeoutExpired:
                kill_group(p)
                r = Ran(exp_id, None, f"killed: no result within {left:.0f} s (the budget)")
        if r.how:
            print(r.line(), file=out, flush=True)
        ran.append(r)
    return ran


def _run_here(exp_id: str, quick: bool) -> None:
    """One experiment through the lab's runner, in this process (what each child does)."""
    from ailab.curriculum import load_catalogue
    from ailab.results import provenance
    from ailab.runner import resolve, run_one

    cat = load_catalogue(check_runners=False)  # import only the selected runner: the GPU image lacks other deps
    for exp in resolve(exp_id, cat):
        t0 = time.perf_counter()
        o = run_one(exp, "cuda", quick, provenance.collect())
        print(f"{o.experiment_id} {o.status} {time.perf_counter() - t0:.1f}s {o.reason[:400]}", flush=True)


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m tools.gpucall.engines_suite")
    ap.add_argument("selection", nargs="?", help="experiments, days or weeks, comma-separated (d29.e3,d33)")
    ap.add_argument("--one", help="run this one experiment here (what each child process does)")
    ap.add_argument("--budget", type=float, default=400, help="seconds for the whole selection")
    ap.add_argument("--quick", action="store_true")
    a = ap.parse_args(argv)
    if a.one:
        _run_here(a.one, a.quick)
        return 0
    if not a.selection:
        ap.error("name the experiments (SEL), e.g. d29.e3,d33.e4")
    from ailab.curriculum import load_catalogue
    from ailab.runner import resolve

    ids = [e.id for e in resolve(a.selection, load_catalogue(check_runners=False))]
    ran = run_each(ids, a.budget, a.quick)
    return 0 if all(r.returncode == 0 for r in ran) else 1


if __name__ == "__main__":
    sys.exit(main())
