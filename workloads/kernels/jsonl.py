"""Parse the harness's JSON lines (cuda/include/harness.cuh) into lab tables and notes."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from typing import Any

from ailab.contract import Column, Series, Table


class ParseError(ValueError):
    """A line that is not a harness record; the message names the line number and what was wrong."""


@dataclass
class Record:
    case: str
    table: str
    columns: list[tuple[str, str]]
    row: list[Any]

    def get(self, name: str) -> Any:
        """The value of column `name` (None when the row has no such column)."""
        for (col, _), v in zip(self.columns, self.row, strict=True):
            if col == name:
                return v
        return None


@dataclass
class Parsed:
    records: list[Record] = field(default_factory=list)
    notes: dict[str, list[str]] = field(default_factory=dict)
    other: list[dict[str, Any]] = field(default_factory=list)  # JSON objects that are neither rows nor notes

    def rows(self, case: str | None = None, table: str | None = None) -> list[Record]:
        return [r for r in self.records if (case is None or r.case == case) and (table is None or r.table == table)]


def parse(text: str) -> Parsed:
    """Every non-empty line must be a JSON object; rows need case, table, columns [[name, unit]...] and row."""
    out = Parsed()
    for no, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as exc:
            raise ParseError(f"line {no}: not JSON ({exc.msg}): {line[:120]!r}") from exc
        if not isinstance(obj, dict):
            raise ParseError(f"line {no}: expected a JSON object, got {type(obj).__name__}")
        if "note" in obj:
            out.notes.setdefault(str(obj.get("case", "")), []).append(str(obj["note"]))
        elif "row" in obj:
            missing = [k for k in ("case", "table", "columns", "row") if k not in obj]
            if missing:
                raise ParseError(f"line {no}: row record lacks {', '.join(missing)}")
            cols = obj["columns"]
            if not all(isinstance(c, list) and len(c) == 2 for c in cols):
                raise ParseError(f"line {no}: columns must be [name, unit] pairs, got {cols!r}")
            if len(cols) != len(obj["row"]):
                raise ParseError(f"line {no}: {len(obj['row'])} values for {len(cols)} columns")
            row = [math.nan if v is None else v for v in obj["row"]]  # the harness writes non-finite as null
            out.records.append(Record(obj["case"], obj["table"], [(c[0], c[1]) for c in cols], row))
        else:
            out.other.append(obj)
    return out


def tables(records: list[Record], caption: str = "") -> list[Table]:
    """Group rows by table name (first-seen order); a table's columns are those of its first row."""
    by: dict[str, Table] = {}
    for r in records:
        t = by.get(r.table)
        if t is None:
            t = by[r.table] = Table.of(r.table, r.columns, caption=caption)
        if [c.name for c in t.columns] != [c for c, _ in r.columns]:
            raise ParseError(f"table {r.table!r}: rows with different columns")
        t.add(*r.row)
    return list(by.values())


def series(
    records: list[Record], name: str, x: str, y: str, group: str, log_x: bool = False, log_y: bool = False
) -> Series:
    """One line per distinct `group` value, points (x, y) taken from the named columns."""
    if not records:
        raise ParseError(f"series {name!r}: no rows")
    units = dict(records[0].columns)
    for col in (x, y, group):
        if col not in units:
            raise ParseError(f"series {name!r}: column {col!r} not in {list(units)}")
    s = Series(name=name, x=Column(x, units[x]), y=Column(y, units[y]), log_x=log_x, log_y=log_y)
    for r in records:
        xv, yv = r.get(x), r.get(y)
        if isinstance(xv, int | float) and isinstance(yv, int | float) and math.isfinite(yv):
            s.point(str(r.get(group)), float(xv), float(yv))
    return s
