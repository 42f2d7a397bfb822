"""A local service's identity (PID + start in ticks after boot) against wall-clock steps and recycled PIDs, on real
processes: `sleep` children started the way `process.launch` starts services (a session of their own)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from dataclasses import asdict, replace
from pathlib import Path

import psutil
import pytest

from ailab.local import process, state
from ailab.local.process import Running


def _record(proc: subprocess.Popen, name: str = "svc") -> Running:
    ticks = process.start_ticks(proc.pid)
    assert ticks is not None
    return Running(name, proc.pid, ticks, {}, "", ["sleep"], {}, None, "SIGTERM", None, time.time())


@pytest.fixture
def leader() -> Iterator[subprocess.Popen]:
    proc = subprocess.Popen(["sleep", "60"], start_new_session=True)
    yield proc
    proc.kill()
    proc.wait()


def test_start_ticks_is_psutils_monotonic_start_and_none_for_no_process(leader: subprocess.Popen) -> None:
    ticks = process.start_ticks(leader.pid)
    expected = psutil.Process(leader.pid).create_time() - psutil.boot_time()
    assert ticks is not None and abs(ticks / process.CLOCK_TICKS - expected) < 0.05
    assert process.start_ticks(2**22 + 1) is None  # above any pid_max


def test_start_ticks_reads_a_command_name_with_spaces_and_parentheses(tmp_path: Path) -> None:
    odd = tmp_path / "a) b ("
    odd.symlink_to(shutil.which("sleep"))
    proc = subprocess.Popen([str(odd), "60"])
    try:
        assert psutil.Process(proc.pid).name() == "a) b ("
        assert process.start_ticks(proc.pid) == process.start_ticks(proc.pid) is not None
        assert process.alive(proc.pid, process.start_ticks(proc.pid))
    finally:
        proc.kill()
        proc.wait()


def test_a_wall_clock_step_does_not_make_a_running_service_look_gone(
    leader: subprocess.Popen, monkeypatch: pytest.MonkeyPatch
) -> None:
    """CI: a check against psutil's wall-clock create_time read a starting tritonserver as exited; the clock step
    is simulated by moving the boot time psutil reports (it derives create_time from it)."""
    rec = _record(leader)
    before = psutil.Process(leader.pid).create_time()
    real = psutil.boot_time()
    monkeypatch.setattr(psutil._psplatform, "boot_time", lambda: real + 30.0)  # what Process.create_time adds
    assert psutil.Process(leader.pid).create_time() - before == pytest.approx(30.0)  # the old identity moved
    assert process.alive(rec.pid, rec.start_ticks)
    assert not process.alive(rec.pid, rec.start_ticks - 1)  # another start: a recycled PID


def test_kill_group_leaves_a_process_that_holds_a_recycled_pid(leader: subprocess.Popen) -> None:
    """A record whose PID now names a newer session leader (the old service's group is empty): kill nothing."""
    stale = replace(_record(leader), start_ticks=process.start_ticks(leader.pid) - 100)
    process.kill_group(stale)
    assert leader.poll() is None and process.alive(leader.pid, process.start_ticks(leader.pid))
    assert not process.stop(stale)  # gone as far as the record goes, and still nothing killed
    assert leader.poll() is None


def test_kill_group_kills_the_group_and_reaps_our_child() -> None:
    proc = subprocess.Popen(["sh", "-c", "sleep 60 & sleep 60 & wait"], start_new_session=True)
    try:
        deadline = time.monotonic() + 10
        while len(psutil.Process(proc.pid).children()) < 2 and time.monotonic() < deadline:
            time.sleep(0.02)
        helpers = psutil.Process(proc.pid).children()
        assert len(helpers) == 2
        rec = _record(proc)
        process.kill_group(rec)
        assert not process.alive(rec.pid, rec.start_ticks)
        assert proc.pid not in {c.pid for c in psutil.Process().children()}, "left a zombie"
        psutil.wait_procs(helpers, timeout=10)
        assert not [h for h in helpers if h.is_running() and h.status() != psutil.STATUS_ZOMBIE]
    finally:
        if proc.returncode is None:
            proc.kill()


def test_a_record_written_with_create_time_reads_as_ticks(leader: subprocess.Popen, tmp_path: Path) -> None:
    rec = _record(leader)
    legacy = {k: v for k, v in asdict(rec).items() if k != "start_ticks"}
    legacy["create_time"] = psutil.Process(leader.pid).create_time()
    state.state_file(tmp_path).write_text(
        json.dumps(
            {"services": {"svc": legacy}, "supervisor": {"pid": leader.pid, "create_time": legacy["create_time"]}}
        )
    )
    read = state.services(tmp_path)["svc"]
    assert read.start_ticks == rec.start_ticks and process.alive(read.pid, read.start_ticks)
    sup = state.supervisor(tmp_path)
    assert sup is not None and (sup.pid, sup.start_ticks) == (leader.pid, rec.start_ticks)


@pytest.mark.parametrize(
    ("script", "how"), [("exit 3", "exit code 3"), ("kill -9 $$", "killed by SIGKILL"), ("kill -11 $$", "SIGSEGV")]
)
def test_a_service_that_dies_during_start_is_reported_with_how_it_ended(tmp_path: Path, script: str, how: str) -> None:
    """The message says why as far as the kernel does: an exit code, or the signal (CI had only 'exited')."""
    from ailab.local.registry import PlatformError
    from ailab.local.spec import ServiceSpec

    spec = ServiceSpec("dies", ["sh", "-c", f"sleep 0.2; {script}"], {}, lambda: False, tmp_path / "dies.log")
    rec = process.launch(spec)
    with pytest.raises(PlatformError, match=rf"service dies: exited during start \(pid {rec.pid}, [^)]*{how}"):
        process.wait_ready(rec, spec, timeout=20)
    assert rec.pid not in {c.pid for c in psutil.Process().children()}, "left a zombie"


def test_kill_group_kills_the_helpers_a_dead_service_left_behind() -> None:
    """The service exited and its helper lives on in its process group (a python stub after a crashed
    tritonserver): the group's number cannot be given to a new process meanwhile, so the helper is killed."""
    proc = subprocess.Popen(
        ["sh", "-c", "sleep 60 & echo $!; read _"],
        start_new_session=True,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
    )
    helper = psutil.Process(int(proc.stdout.readline()))  # type: ignore[union-attr]
    rec = _record(proc)  # the shell waits on its stdin: still running here
    proc.stdin.close()  # type: ignore[union-attr]
    proc.wait()
    assert os.getpgid(helper.pid) == proc.pid and process.start_ticks(proc.pid) is None
    try:
        process.kill_group(rec)
        deadline = time.monotonic() + 10
        while _alive_not_zombie(helper) and time.monotonic() < deadline:
            time.sleep(0.02)
        assert not _alive_not_zombie(helper)
    finally:
        if _alive_not_zombie(helper):
            helper.kill()


def _alive_not_zombie(p: psutil.Process) -> bool:
    try:
        return p.status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False
