"""The experiments of one GPU call (workloads/llm/gpu_suite.sh), each within its share of the call's time.

    python3 -m tools.gpucall.llm_run d81.e4,d82.e2,d84.e4 --budget-s 420 [--quick] [--device cuda]

Every selected experiment runs through the lab's own runner (`run_one`: results carry provenance and the runner's
"never replace ok with worse" rule). One that takes a time budget (`budget_s`, `cuda_budget_s`) gets the smaller of
its binding's budget and what is left of the call minus `--reserve-s`; it stops starting rows when that runs out
and stores what it measured. SIGTERM (sent by `timeout` at the call's limit) asks the running experiment to stop at
its next check and starts no other. Each experiment runs in its own process (`--in-process` runs the selection in
this one): a crash (a segfault, a CUDA error that poisons the context) loses that experiment only, and the GPU
memory of one is free for the next. Every line carries the UTC time and the seconds since the call started.
"""

from __future__ import annotations

import argparse
import math
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime
from typing import Any

from workloads.llm.budget import STOP, stop_on_signal

MIN_START_S = 10.0  # an experiment is not started with less time than this left


def _line(t0: float, msg: str) -> None:
    print(f"{datetime.now(UTC).strftime('%H:%M:%SZ')} +{time.monotonic() - t0:6.1f}s {msg}", flush=True)


def share(binding_budget: float | None, left_s: float, reserve_s: float) -> float | None:
    """The budget one experiment gets: its binding's, capped by the call's time left minus the reserve;
    None when it should not start (less than MIN_START_S would be left)."""
    avail = left_s - reserve_s
    if avail < MIN_START_S:
        return None
    return min(binding_budget if binding_budget is not None else math.inf, avail)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python3 -m tools.gpucall.llm_run", description=__doc__.split("\n")[0])
    ap.add_argument("selection", help="experiments, e.g. d81.e4,d82.e2,d84.e4")
    ap.add_argument("--budget-s", type=float, required=True, help="seconds for the whole call (the outer timeout)")
    ap.add_argument("--reserve-s", type=float, default=20.0, help="seconds kept back for storing results")
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--device", default="cuda", choices=["cuda", "cpu"])
    ap.add_argument("--in-process", action="store_true", help="run the selection in this process, one after another")
    ap.add_argument("--call-start", type=float, help="epoch seconds the call started (lines count from it)")
    a = ap.parse_args(argv)
    if a.budget_s <= 0 or a.reserve_s < 0:
        ap.error(f"--budget-s {a.budget_s} / --reserve-s {a.reserve_s}: allowed budget > 0 and reserve >= 0")
    return _in_process(a) if a.in_process else _one_process_each(a)


def _one_process_each(a: argparse.Namespace) -> int:
    """Start `--in-process` for each experiment in turn, with the time left; SIGTERM is passed on to the running one."""
    from ailab.curriculum import load_catalogue
    from ailab.runner import resolve

    t0, started = time.monotonic(), time.time()
    child: list[subprocess.Popen] = []

    def _stop(sig: int, _frame: Any) -> None:
        STOP.set()
        _line(t0, f"signal {signal.Signals(sig).name}: stop requested; the running experiment stores what it has")
        for c in child:
            if c.poll() is None:
                c.send_signal(signal.SIGTERM)

    signal.signal(signal.SIGTERM, _stop)
    ids = [e.id for e in resolve(a.selection, load_catalogue(check_runners=False))]
    _line(t0, f"call: {', '.join(ids)}; {a.budget_s:g} s, {a.reserve_s:g} s reserved; {a.device}; a process each")
    for exp_id in ids:
        left = a.budget_s - (time.monotonic() - t0)
        if STOP.is_set() or left - a.reserve_s < MIN_START_S:
            why = "stop requested" if STOP.is_set() else f"{left:.0f} s left, {a.reserve_s:g} s reserved"
            _line(t0, f"{exp_id} not started: {why}")
            continue
        cmd = [sys.executable, "-u", "-m", "tools.gpucall.llm_run", exp_id, "--in-process", "--device", a.device]
        cmd += ["--budget-s", f"{left:.1f}", "--reserve-s", f"{a.reserve_s:g}", "--call-start", f"{started:.3f}"]
        cmd += ["--quick"] if a.quick else []
        child[:] = [subprocess.Popen(cmd)]
        rc = child[0].wait()
        if rc:
            how = f"signal {signal.Signals(-rc).name}" if rc < 0 else f"exit status {rc}"
            _line(t0, f"{exp_id} process ended by {how}: what it had not stored is lost")
    _line(t0, "call done")
    return 0


def _in_process(a: argparse.Namespace) -> int:
    t1 = time.monotonic()  # --budget-s counts from here: the parent gave this process what was left as it started it
    from ailab.curriculum import load_catalogue
    from ailab.curriculum.loader import runner_params_model
    from ailab.results import provenance
    from ailab.runner import resolve, resolve_params, run_one

    t0 = time.monotonic() - (time.time() - a.call_start if a.call_start else 0.0)  # lines count from the call's start
    stop_on_signal(log=lambda m: _line(t0, m))
    cat = load_catalogue(check_runners=False)  # import only the selected runners
    exps = resolve(a.selection, cat)
    prov = provenance.collect()
    ids = ", ".join(e.id for e in exps)
    _line(t0, f"process for {ids}: {a.budget_s:g} s, {a.reserve_s:g} s reserved; {a.device}")
    for exp in exps:
        if STOP.is_set():
            _line(t0, f"{exp.id} not started: stop requested")
            continue
        overrides: dict[str, Any] = {}
        left = a.budget_s - (time.monotonic() - t1)
        if exp.binding is not None and "budget_s" in runner_params_model(exp.binding.runner).model_fields:
            typed, _ = resolve_params(exp, a.quick)
            field = "cuda_budget_s" if a.device == "cuda" else "budget_s"
            got = share(typed.for_device(a.device).budget_s, left, a.reserve_s)
            if got is None:
                _line(t0, f"{exp.id} not started: {left:.0f} s left, {a.reserve_s:g} s reserved")
                continue
            overrides[field] = round(got, 1)
        _line(t0, f"{exp.id} start" + (f" (budget {overrides[field]:g} s)" if overrides else " (no budget)"))
        s0 = time.monotonic()
        o = run_one(exp, a.device, a.quick, prov, log=lambda m: print(m, flush=True), overrides=overrides)
        where = f" -> {o.path}" if o.path else ""
        _line(t0, f"{o.experiment_id} {o.status} {time.monotonic() - s0:.1f}s {o.reason[:600]}{where}")
    _line(t0, f"process for {ids} done")
    return 0


if __name__ == "__main__":
    sys.exit(main())
