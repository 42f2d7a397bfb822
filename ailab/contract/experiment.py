"""The contract between the runner and an experiment: what a runner receives and what it returns.

A runner is a plain function `def run(ctx: Context, p: MyParams) -> Output` (`MyParams` a `Params` subclass),
named in its area's `bindings.yaml` as `package.module:function`. It raises `Skip` when the host turns out not
to be able to run it. What a runner needs from the control plane (the local platform, another experiment's stored
result) reaches it through the context, never by importing `ailab`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Protocol


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


@dataclass(frozen=True)
class Substitute:
    """A measurement made with a stand-in for what the curriculum names: what it stands in for, and why."""

    instead_of: str  # what the curriculum names, e.g. "DCGM exporter", "TensorRT", "a Kubernetes cluster"
    used: str  # the stand-in, e.g. "the lab's NVML exporter", "Inductor max-autotune", "local processes"
    why: str  # why the real thing was not used here

    def __post_init__(self) -> None:
        for name in ("instead_of", "used", "why"):
            if not getattr(self, name).strip():
                raise ValueError(f"Substitute.{name} is empty: say what stands in for what, and why")


@dataclass(frozen=True)
class Generated:
    """A result that is a document drawn from the code's own definitions (a diagram): neither a measurement nor a
    person's writing. The command that drew it, the definitions it was drawn from, the files it wrote."""

    by: str  # the command, e.g. "lab diagrams"
    sources: list[str]  # the definitions the files were drawn from
    files: list[str]  # repository-relative paths of what was generated

    def __post_init__(self) -> None:
        if not self.by.strip() or not self.files or not self.sources:
            raise ValueError("Generated: say which command generated which files from which definitions")


@dataclass
class Output:
    """What an experiment returns: tables, plot series, free-text notes and named artifacts.

    `derived_from` names the experiments whose stored rows this result re-presents (no new measurement);
    `substitute` says when the measurement used a stand-in for what the curriculum names;
    `generated` marks a result that is a document drawn from the code (coverage counts it as generated).
    """

    tables: list[Table] = field(default_factory=list)
    series: list[Series] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    artifacts: dict[str, str] = field(default_factory=dict)  # label -> path relative to the repo (or absolute)
    derived_from: list[str] = field(default_factory=list)
    substitute: Substitute | None = None
    generated: Generated | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class LocalPlatform(Protocol):
    """The running local services, as a runner sees them (ailab.local.platform.Platform implements it)."""

    def address(self, service: str, role: str) -> str: ...  # host:port for gRPC clients and perf_analyzer

    def url(self, service: str, role: str = "http") -> str: ...

    def port(self, service: str, role: str) -> int: ...

    def record(self, service: str) -> Any: ...  # .pid, .ports, .log, .argv of the started process

    def restarts(self, service: str) -> int: ...

    def up(self) -> Any: ...  # start what is not running (a drill restarts a service it killed)

    # the experiment that started it, when a quick run's pool lent it out for reuse (see PlatformFactory); else None
    reused_from: str | None


class PlatformFactory(Protocol):
    """Starts local services (on free ports under `state_dir`) and stops exactly those on exit.

    `reuse=True` says the caller does not change the services (no loads, kills, repository edits): a quick run's
    factory may then lend it identical services started earlier in the same `lab run` instead (the platform's
    `reused_from` names that experiment, and the runner notes it in the result). Full-size runs always start fresh.
    """

    def __call__(
        self,
        services: list[str],
        state_dir: Path,
        options: dict[str, Any] | None = None,
        supervise: bool = False,
        reuse: bool = False,
    ) -> AbstractContextManager[LocalPlatform]: ...


def _no_platform(*_: Any, **__: Any) -> AbstractContextManager[LocalPlatform]:
    raise Skip("needs the local platform, which this context does not provide")


def _no_results(_: str) -> dict[str, Any] | None:
    return None


@dataclass
class Context:
    """What a runner gets: its experiment id, device, quick flag, scratch space and the control plane's services.

    Parameters are not here: they reach the runner as its second, typed argument.
    """

    experiment_id: str
    device: str  # "cpu" | "cuda"
    quick: bool
    workdir: Path
    log: Callable[[str], None] = print
    platform: PlatformFactory = _no_platform  # start local services (tritonserver, prometheus, ...)
    result_of: Callable[[str], dict[str, Any] | None] = _no_results  # another experiment's stored result, same host
    host_class: str = "cpu"  # where results of this run are filed: cpu, h100, h200, h100x2, ...

    def derived_rows(self, source: str) -> dict[str, Any]:
        """The stored `ok` result of experiment `source` on this host class; Skip when it has not been measured."""
        rec = self.result_of(source)
        if rec is None or rec.get("status") != "ok":
            raise Skip(f"derived from {source}, which has no measured result for {self.host_class} yet: run {source}")
        return rec
