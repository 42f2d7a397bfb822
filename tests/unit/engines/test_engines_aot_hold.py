"""d29.e3's packages held at once, in child processes that report as they go: spec checks, a child's crash
recorded with the package, the step, the signal and faulthandler's stack (the crash is the real thing: the child
kills itself with SIGSEGV through the AILAB_AOT_CRASH_AT hook), and, marked slow (two CPU compiles, about a minute
here), two real CPU packages loaded into one process through the same code path the experiment uses."""

from __future__ import annotations

import json

import pytest

from ailab.contract import Context
from workloads.engines.aot_hold import (
    CRASH_HOOK,
    ChildReport,
    HoldSpecError,
    check_spec,
    failure_of,
    held_rows,
    native_backtrace_lib,
    parse_events,
    run_child,
)


def _fake_packages(tmp_path, batches=(2, 4)):
    """Package files that are never loaded: the crash hook fires when the step is announced, before the load."""
    pkgs = []
    for b in batches:
        f = tmp_path / f"cnn_b{b}.pt2"
        f.write_bytes(b"not a package")
        pkgs.append({"path": str(f), "batch": b})
    return pkgs


@pytest.mark.parametrize(
    ("mode", "spec", "field"),
    [
        ("serve", {"device": "cpu", "quick": True}, "field mode = 'serve'"),
        ("hold", {"device": "tpu", "quick": True, "packages": []}, "field device = 'tpu'"),
        ("hold", {"device": "cpu", "quick": "yes", "packages": []}, "field quick = 'yes'"),
        ("hold", {"device": "cpu", "quick": True, "packages": []}, "field packages = \\[\\]"),
        ("hold", {"device": "cpu", "quick": True, "packages": [{"path": "a.pt2", "batch": 0}]}, "packages\\[0\\]"),
        ("build", {"device": "cpu", "quick": True, "batches": [2, 2], "outdir": "x"}, "each batch size once"),
        ("build", {"device": "cpu", "quick": True, "batches": [2]}, "field outdir = None"),
    ],
)
def test_bad_child_specs_are_refused_naming_the_field(mode, spec, field):
    with pytest.raises(HoldSpecError, match=field):
        check_spec(mode, spec)


def test_the_same_package_twice_is_refused():
    pkgs = [{"path": "/a/cnn_b2.pt2", "batch": 2}, {"path": "/b/cnn_b2.pt2", "batch": 2}]
    with pytest.raises(HoldSpecError, match="each package file once"):
        check_spec("hold", {"device": "cpu", "quick": True, "packages": pkgs})


def test_a_segfault_in_the_child_is_recorded_with_package_step_signal_and_stack(tmp_path):
    pkgs = _fake_packages(tmp_path)
    report = run_child(
        "hold",
        {"device": "cpu", "quick": True, "packages": pkgs},
        timeout_s=120,
        env={CRASH_HOOK: "cnn_b2.pt2:load"},
    )
    f = report.failure
    assert f is not None
    assert (f.package, f.step) == ("cnn_b2.pt2", "load")
    assert f.how == "SIGSEGV (signal 11)"
    assert f.stack.startswith("Fatal Python error: Segmentation fault")
    assert "in _step" in f.stack and "in hold" in f.stack  # faulthandler's Python stack, innermost first
    if native_backtrace_lib() is not None:  # a C compiler here: the native frames follow the Python ones
        native = f.stack.index("Native stack (ailab native_backtrace")
        assert native > f.stack.index("in hold") and "libc.so" in f.stack[native:]
    assert report.of("baseline")  # what the child reported before the crash is kept
    rows, cols = held_rows(report, "cpu")
    assert rows == [
        {"loaded": 0, "package": "cnn_b2.pt2", "batch": 2, "status": "child ended: SIGSEGV (signal 11) at step load"}
    ]
    assert "device_used_mib" not in cols  # a CPU run has no device-memory column


def test_a_python_error_in_the_child_is_recorded_with_its_traceback(tmp_path):
    pkgs = _fake_packages(tmp_path)  # no sidecar beside them: aot.load refuses the first one
    report = run_child("hold", {"device": "cpu", "quick": True, "packages": pkgs}, timeout_s=120)
    f = report.failure
    assert f is not None and (f.package, f.step, f.how) == ("cnn_b2.pt2", "load", "exit status 1")
    assert f.stack.startswith("Traceback") and "PackageDeviceError" in f.stack


def test_rows_keep_what_was_reported_before_the_crash():
    out = (
        "\n".join(
            json.dumps(e)
            for e in [
                {"event": "step", "package": "cnn_b1.pt2", "step": "load", "batch": 1},
                {"event": "step", "package": "cnn_b1.pt2", "step": "first_run", "batch": 1},
                {
                    "event": "loaded",
                    "loaded": 1,
                    "package": "cnn_b1.pt2",
                    "batch": 1,
                    "load_s": 0.2,
                    "first_call_ms": 3.0,
                    "device_used_mib": 40.0,
                    "host_rss_delta_mib": 5.0,
                },
                {"event": "step", "package": "cnn_b8.pt2", "step": "load", "batch": 8},
            ]
        )
        + '\nW1202 a library warning\n{"event": "loa'
    )  # a line cut short by the crash is skipped
    events = parse_events(out)
    f = failure_of(events, -11, "noise\nFatal Python error: Segmentation fault\n\nThread 0x1:\n  File ...", False, 60)
    assert f is not None and (f.package, f.step, f.how) == ("cnn_b8.pt2", "load", "SIGSEGV (signal 11)")
    rows, cols = held_rows(ChildReport(events, f), "cuda")
    assert [r["package"] for r in rows] == ["cnn_b1.pt2", "cnn_b8.pt2"]
    assert rows[0]["device_used_mib"] == 40.0 and rows[0]["status"] == "loaded, not re-run"
    assert rows[1] == {
        "loaded": 1,
        "package": "cnn_b8.pt2",
        "batch": 8,
        "status": "child ended: SIGSEGV (signal 11) at step load",
    }
    assert cols.index("device_used_mib") < cols.index("status")
    assert failure_of(events, None, "", True, 60).how == "no result within 60 s (killed)"
    assert failure_of([*events, {"event": "done"}], 0, "", False, 60) is None
    # every row reported, then the interpreter died on its way out: still a failure, at step exit
    at_exit = failure_of(
        [*events, {"event": "done"}, {"event": "step", "package": "-", "step": "exit"}], -11, "", False, 60
    )
    assert (at_exit.package, at_exit.step, at_exit.how) == ("-", "exit", "SIGSEGV (signal 11)")


@pytest.mark.slow
def test_two_cpu_packages_held_at_once_and_a_crash_in_the_second(tmp_path):
    """The experiment's own path (build child, hold child) with two real CPU packages; then the same hold with the
    second package's first call killed by SIGSEGV."""
    built = run_child("build", {"device": "cpu", "quick": True, "batches": [2, 4], "outdir": str(tmp_path)}, 600)
    assert built.failure is None, built.failure
    pkgs = [{"path": e["file"], "batch": e["batch"]} for e in built.of("built")]
    assert [p["batch"] for p in pkgs] == [2, 4]
    spec = {"device": "cpu", "quick": True, "packages": pkgs}

    report = run_child("hold", spec, 300)
    assert report.failure is None, report.failure
    rows, _ = held_rows(report, "cpu")
    assert [(r["loaded"], r["package"], r["batch"], r["status"]) for r in rows] == [
        (1, "cnn_b2.pt2", 2, "ok"),
        (2, "cnn_b4.pt2", 4, "ok"),
    ]
    # both held in one process, each run again once both were loaded: its own model's answer, unchanged
    assert all(r["same_as_first_call"] and r["max_abs_err_vs_eager"] < 1e-4 for r in rows)
    assert report.of("released")

    crashed = run_child("hold", spec, 300, env={CRASH_HOOK: "cnn_b4.pt2:first_run"})
    rows, _ = held_rows(crashed, "cpu")
    assert rows[0]["package"] == "cnn_b2.pt2" and rows[0]["load_s"] > 0  # reported before the crash, kept
    assert rows[-1]["status"] == "child ended: SIGSEGV (signal 11) at step first_run"
    assert rows[-1]["package"] == "cnn_b4.pt2" and "Fatal Python error" in crashed.failure.stack


@pytest.mark.slow
def test_the_memory_part_records_a_crash_as_rows_and_notes(tmp_path, monkeypatch):
    from workloads.engines.experiments.aot_packages import AotParams, aot_study

    monkeypatch.setenv(CRASH_HOOK, "cnn_b4.pt2:run_while_all_held")
    ctx = Context(experiment_id="d29.e3", device="cpu", quick=True, workdir=tmp_path / "w")
    ctx.workdir.mkdir()
    out = aot_study(ctx, AotParams(parts=["memory"], batches=[2, 4], one_process_too=True))
    assert [t.name for t in out.tables] == ["packages_loaded", "packages_loaded_one_process"]
    for t in out.tables:  # built in another process, then built in the holding process itself: the same story
        rows = [dict(zip([c.name for c in t.columns], r, strict=True)) for r in t.rows]
        assert [r["package"] for r in rows] == ["cnn_b2.pt2", "cnn_b4.pt2", "cnn_b4.pt2", "cnn_b4.pt2"]
        assert rows[0]["status"] == "ok" and rows[1]["status"] == "loaded, not re-run"
        assert rows[2]["status"] == "child ended: SIGSEGV (signal 11) at step run_while_all_held"
        # the hook fires in the fresh process too, so the package alone "died too": the retry is recorded
        assert rows[3]["status"].startswith("alone in a fresh process: died too, SIGSEGV")
    stacks = [n for n in out.notes if "faulthandler stack:\nFatal Python error: Segmentation fault" in n]
    assert [n.split(":")[0] for n in stacks] == ["packages_loaded", "packages_loaded_one_process"]
