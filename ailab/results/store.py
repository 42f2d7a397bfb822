"""Result files: one JSON per experiment and host class under reports/results/<day>/<id>.<host>.json."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ailab.contract.paths import results_dir

SCHEMA_VERSION = 1
STATUSES = ("ok", "skipped", "failed")


UNREADABLE = "unreadable"  # status given to a result file that cannot be read; never written


@dataclass(frozen=True)
class Result:
    path: Path
    data: dict[str, Any]
    error: str | None = None  # why the file could not be read (then data holds only id, host_class and status)

    @property
    def id(self) -> str:
        return self.data["id"]

    @property
    def status(self) -> str:
        return self.data["status"]

    @property
    def host_class(self) -> str:
        return self.data.get("host_class", "cpu")


def result_path(exp_id: str, host_class: str, root: Path | None = None) -> Path:
    root = root or results_dir()
    return root / exp_id.split(".")[0] / f"{exp_id}.{host_class}.json"


def save(record: dict[str, Any], root: Path | None = None, path: Path | None = None) -> Path:
    """Write a result record atomically (a crash never leaves a half-written file); `path` overrides the default."""
    if record.get("status") not in STATUSES:
        raise ValueError(f"result status {record.get('status')!r} is not one of {STATUSES}")
    path = path or result_path(record["id"], record.get("host_class", "cpu"), root)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(
        json.dumps({"schema": SCHEMA_VERSION, **record}, indent=1, ensure_ascii=False, default=str) + "\n",
        encoding="utf-8",
    )
    tmp.replace(path)
    return path


def load_result(path: Path) -> Result | None:
    """The result at `path`; None when there is no such file; `error` set (never raised) when it cannot be read."""
    if not path.exists():
        return None
    exp_id, _, host = path.name.removesuffix(".json").partition(".e")
    exp_id = f"{exp_id}.e{host.split('.', 1)[0]}" if host else exp_id
    host_class = host.split(".", 1)[1] if "." in host else "?"
    placeholder = {"id": exp_id, "host_class": host_class, "status": UNREADABLE}
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        return Result(path, {**placeholder, "reason": f"cannot read: {exc}"}, f"cannot read: {exc}")
    except json.JSONDecodeError as exc:
        why = f"not valid JSON (line {exc.lineno}, column {exc.colno}: {exc.msg})"
        return Result(path, {**placeholder, "reason": why}, why)
    why = None
    if not isinstance(data, dict):
        why = f"expected a JSON object, found {type(data).__name__}"
    elif data.get("schema") != SCHEMA_VERSION:
        why = f"result schema {data.get('schema')!r}, this lab reads {SCHEMA_VERSION}"
    elif (missing := [k for k in ("id", "status") if k not in data]) or data["status"] not in STATUSES:
        why = f"missing fields {missing}" if missing else f"status {data['status']!r} is not one of {STATUSES}"
    if why:
        return Result(path, {**placeholder, "reason": why}, why)
    return Result(path, data)


def load_day(day_id: str, root: Path | None = None) -> list[Result]:
    """All results of one day (e.g. 'd03'), sorted by experiment id then host class; unreadable ones included,
    each with `error` saying what is wrong, so callers can name the file and go on."""
    root = root or results_dir()
    out = []
    for p in sorted((root / day_id).glob(f"{day_id}.e*.json")):
        res = load_result(p)
        if res is not None:
            out.append(res)
    return out
