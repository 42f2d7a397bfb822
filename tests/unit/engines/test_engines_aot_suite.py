"""The engines GPU suite's loop runs each experiment in its own process: a child killed by SIGSEGV is reported by
name and signal and the next experiment still runs. The children here are tiny Python commands standing in for
`python -m tools.gpucall.engines_suite --one ID` (a real one needs the GPU the suite is for)."""

from __future__ import annotations

import sys

from tools.gpucall.engines_suite import child_argv, describe, run_each
from workloads.engines.aot_hold import native_backtrace_lib

CHILDREN = {
    "d29.e3": "import os, signal; print('loading'); os.kill(os.getpid(), signal.SIGSEGV)",
    "d33.e4": "print('d33.e4 ok 1.0s')",
    "d53.e3": "raise SystemExit(3)",
}


def _argv(exp_id: str, quick: bool) -> list[str]:
    return [sys.executable, "-X", "faulthandler", "-c", CHILDREN[exp_id]]


def test_a_crash_is_reported_with_its_signal_and_the_next_experiment_runs(tmp_path):
    log = tmp_path / "run.log"
    with log.open("w") as out:
        ran = run_each(list(CHILDREN), budget_s=120, argv=_argv, out=out)
    text = log.read_text()
    assert [(r.exp_id, r.returncode) for r in ran] == [("d29.e3", -11), ("d33.e4", 0), ("d53.e3", 3)]
    assert "d29.e3 crashed: SIGSEGV (signal 11)" in text
    assert "Fatal Python error: Segmentation fault" in text  # faulthandler's stack reached the log
    if native_backtrace_lib() is not None:  # and, with a C compiler here, the native frames after it
        assert text.index("Native stack (ailab native_backtrace") < text.index("d29.e3 crashed")
    assert "d33.e4 ok 1.0s" in text  # the next experiment ran after the crash
    assert "d53.e3 runner process exited 3" in text
    assert text.index("d29.e3 crashed") < text.index("d33.e4 ok")


def test_no_experiment_starts_without_budget_left(tmp_path):
    with (tmp_path / "run.log").open("w") as out:
        ran = run_each(["d33.e4"], budget_s=5, argv=_argv, out=out)
    assert ran[0].returncode is None and ran[0].how.startswith("not started")


def test_a_child_past_the_budget_is_killed_and_named(tmp_path, monkeypatch):
    monkeypatch.setattr("tools.gpucall.engines_suite.MIN_START_S", 0)
    slow = {"d33.e4": "import time; time.sleep(30)"}
    with (tmp_path / "run.log").open("w") as out:
        ran = run_each(["d33.e4"], budget_s=1, argv=lambda i, q: [sys.executable, "-c", slow[i]], out=out)
    assert ran[0].how.startswith("killed: no result within")


def test_exit_statuses_are_described_and_the_child_command_runs_the_runner_with_faulthandler():
    assert describe(0) == ""
    assert describe(-6).startswith("crashed: SIGABRT (signal 6)")
    assert describe(1) == "runner process exited 1"
    argv = child_argv("d29.e3", quick=True)
    assert argv[1:] == ["-X", "faulthandler", "-m", "tools.gpucall.engines_suite", "--one", "d29.e3", "--quick"]
