"""Result files: one JSON per experiment and host class under reports/results/<day>/<id>.<host>.json."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ailab.paths import results_dir

SCHEMA_VERSION = 1
STATUSES = ("ok", "skipped", "failed")


@dataclass(frozen=True)
class Result:
    path: Path
    data: dict[str, Any]

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


def save(record: dict[str, Any], root: Path | None = None) -> Path:
    """Write a result record atomically (a crash never leaves a half-written file)."""
    if record.get("status") not in STATUSES:
        raise ValueError(f"result status {record.get('status')!r} is not one of {STATUSES}")
    path = result_path(record["id"], record.get("host_class", "cpu"), root)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(
        json.dumps({"schema": SCHEMA_VERSION, **record}, indent=1, ensure_ascii=False, default=str) + "\n",
        encoding="utf-8",
    )
    tmp.replace(path)
    return path


def load_day(day_id: str, root: Path | None = None) -> list[Result]:
    """All results of one day (e.g. 'd03'), sorted by experiment id then host class."""
    root = root or results_dir()
    out = []
    for p in sorted((root / day_id).glob(f"{day_id}.e*.json")):
        data = json.loads(p.read_text(encoding="utf-8"))
        if data.get("schema") != SCHEMA_VERSION:
            raise ValueError(f"{p}: result schema {data.get('schema')!r}, this lab reads {SCHEMA_VERSION}")
        out.append(Result(p, data))
    return out
