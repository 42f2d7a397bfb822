"""Run a command and record how long it took, where and at which commit, as JSON; exit with the command's status.

`make lab` runs the main job through it, so the ≤ 10 minute budget is checked against a recorded run, not a number
typed into the README:

    python tools/timed.py --out .lab/main/timing.json --label "make lab" -- .venv/bin/lab run d02,d03 --quick

The record: label, command, exit status, wall seconds, start and end (UTC), and the provenance every result carries
(commit and whether the tree was dirty, host, CPU model and count, GPUs, Python, key packages). A committed copy of
a run on a machine like CI's lives in reports/checks/make-lab/.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import subprocess
import sys
import time
from pathlib import Path


def utc_now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, required=True, help="the JSON record to write (its folder is created)")
    ap.add_argument("--label", default="", help="what the command is, for the reader (e.g. 'make lab')")
    ap.add_argument("cmd", nargs=argparse.REMAINDER, help="-- then the command and its arguments")
    args = ap.parse_args(argv)
    cmd = args.cmd[1:] if args.cmd[:1] == ["--"] else args.cmd
    if not cmd:
        ap.error("cmd: no command given after --; allowed: any command and its arguments")
    from ailab.results import provenance  # after the arguments: a bad call is refused before anything is imported

    started, t0 = utc_now(), time.perf_counter()
    try:
        rc = subprocess.run(cmd, check=False).returncode
    except FileNotFoundError as exc:
        print(f"timed.py: cmd: {cmd[0]!r} not found ({exc.strerror})", file=sys.stderr)
        rc = 127
    wall = time.perf_counter() - t0
    record = {
        "label": args.label,
        "command": cmd,
        "returncode": rc,
        "wall_s": round(wall, 1),
        "started_utc": started,
        "ended_utc": utc_now(),
        "provenance": provenance.collect(),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(record, indent=1) + "\n")
    print(f"{args.label or cmd[0]}: {wall / 60:.1f} min wall, exit {rc} (recorded in {args.out})", file=sys.stderr)
    return rc


if __name__ == "__main__":
    sys.exit(main())
