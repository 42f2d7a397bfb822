"""tools/timed.py, which `make lab` runs its main job through: the record says how long the command took, with
what exit status and where; the command's own exit status is passed on; a call without a command is refused,
naming the field, before anything is written."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from ailab.contract.paths import REPO_ROOT

TOOL = REPO_ROOT / "tools" / "timed.py"


def timed(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(TOOL), *args], capture_output=True, text=True, cwd=REPO_ROOT)


def test_the_record_carries_the_wall_time_the_status_and_the_provenance(tmp_path: Path) -> None:
    out = tmp_path / "deep" / "timing.json"
    p = timed(
        "--out",
        str(out),
        "--label",
        "sleepy",
        "--",
        sys.executable,
        "-c",
        "import time,sys; time.sleep(0.3); sys.exit(3)",
    )
    assert p.returncode == 3
    rec = json.loads(out.read_text())
    assert rec["label"] == "sleepy" and rec["returncode"] == 3
    assert 0.3 <= rec["wall_s"] < 30
    assert rec["command"][0] == sys.executable
    assert rec["provenance"]["git"]["commit"] and rec["provenance"]["cpu_count"] >= 1
    assert "sleepy" in p.stderr and "exit 3" in p.stderr


def test_a_call_without_a_command_is_refused_naming_the_field_and_writes_nothing(tmp_path: Path) -> None:
    out = tmp_path / "timing.json"
    p = timed("--out", str(out), "--")
    assert p.returncode == 2
    assert "cmd: no command given" in p.stderr
    assert not out.exists()


def test_a_missing_program_is_recorded_as_127(tmp_path: Path) -> None:
    out = tmp_path / "timing.json"
    p = timed("--out", str(out), "--", "/nonexistent/program")
    assert p.returncode == 127
    assert json.loads(out.read_text())["returncode"] == 127
