"""The contract between the runner and an experiment: what a runner receives and what it returns.

A runner is a plain function `def run(ctx: Context) -> Output`, named in the catalogue's bindings as
`package.module:function`. It raises `Skip` when the host turns out not to be able to run it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any


class Skip(Exception):  # noqa: N818 - reads as `raise Skip(reason)` in experiments
    """Raised by an experiment that cannot run on this host; the message is the recorded reason."""


@dataclass(frozen=True)
class Column:
    name: str
    unit: str = ""  # "" for dimensionless/labels; e.g. "ms", "req/s", "MiB", "GB/s", "%"


@dataclass
class Table:
    """Rows of measurements; every column carries its unit so reports can print it in the header."""

    name: str
    columns: list[Column]
    rows: list[list[Any]] = field(default_factory=list)
    caption: str = ""

    def add(self, *values: Any) -> None:
        if len(values) != len(self.columns):
            raise ValueError(f"table {self.name!r}: row has {len(values)} values, expected {len(self.columns)}")
        self.rows.append(list(values))

    @classmethod
    def of(cls, name: str, columns: Sequence[tuple[str, str] | str], caption: str = "") -> Table:
        cols = [Column(c) if isinstance(c, str) else Column(*c) for c in columns]
        return cls(name=name, columns=cols, caption=caption)


@dataclass
class Series:
    """One or more lines for a plot: {label: [[x, y], ...]}."""

    name: str
    x: Column
    y: Column
    lines: dict[str, list[list[float]]] = field(default_factory=dict)
    log_x: bool = False
    log_y: bool = False
    kind: str = "line"  # line | bar | scatter | timeline (each point is [start, end] of a bar on the label's lane)

    def point(self, label: str, x: float, y: float) -> None:
        self.lines.setdefault(label, []).append([x, y])


@dataclass
class Output:
    """What an experiment returns: tables, plot series, free-text notes and named artifacts."""

    tables: list[Table] = field(default_factory=list)
    series: list[Series] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    artifacts: dict[str, str] = field(default_factory=dict)  # label -> path relative to the repo (or absolute)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class Context:
    """What a runner gets: its experiment id, merged parameters, device, quick flag and scratch space."""

    experiment_id: str
    params: dict[str, Any]
    device: str  # "cpu" | "cuda"
    quick: bool
    workdir: Path
    log: Callable[[str], None] = print

    def param(self, name: str, default: Any = None) -> Any:
        return self.params.get(name, default)
