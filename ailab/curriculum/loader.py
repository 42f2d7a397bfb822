"""Load and validate the catalogue: days/dNN.yaml (curriculum text) + every area's bindings.yaml (how the lab runs
its experiments: `workloads/<area>/bindings.yaml`, beside the area's `experiments/` runners).

Each binding's `params`, and `params` + `quick`, are validated against the runner's typed `Params` model when the
catalogue loads, so `lab list` and the tests fail on a bad binding naming the file, the experiment and the field.

That check imports every runner module (about 2.5 s of every `lab` command on 2 cores, most of a quick day's
overhead). The repository's catalogue therefore records a stamp once it has validated: a fingerprint of everything
the check reads (the day and binding files, every Python file under ailab/ and workloads/ by size and mtime, the
Python and pydantic versions) under the state dir. A later load with the same fingerprint has validated the same
inputs already and skips the imports; any change to those files makes the next load validate again.
"""

from __future__ import annotations

import ast
import hashlib
import importlib
import importlib.util
import os
import sys
from dataclasses import dataclass, field
from functools import cache, lru_cache
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from ailab.contract.params import Params, ParamsError, params_model, validate
from ailab.contract.paths import REPO_ROOT, state_dir
from ailab.curriculum.schema import Binding, Day, Experiment

HERE = Path(__file__).resolve().parent
DAYS_DIR = HERE / "days"
WORKLOADS_DIR = REPO_ROOT / "workloads"


def binding_files(workloads_dir: Path = WORKLOADS_DIR) -> list[Path]:
    """Every area's bindings file, in a stable order."""
    return sorted(workloads_dir.glob("*/bindings.yaml"))


class CatalogueError(ValueError):
    """A malformed catalogue entry; the message names the file, the day and the field."""


@dataclass(frozen=True)
class Catalogue:
    days: dict[int, Day]
    experiments: dict[str, Experiment] = field(default_factory=dict)

    def day(self, n: int) -> Day:
        return self.days[n]

    def week(self, n: int) -> list[Day]:
        return [d for d in self.days.values() if d.week == n]

    @property
    def weeks(self) -> list[int]:
        return sorted({d.week for d in self.days.values()})


def _rel(path: Path) -> str:
    try:
        return str(path.relative_to(HERE.parent.parent))
    except ValueError:
        return str(path)


def _fmt_loc(loc: tuple[Any, ...]) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def _validation_error(path: Path, where: str, err: ValidationError) -> CatalogueError:
    first = err.errors()[0]
    field_name = _fmt_loc(first["loc"]) or "(top level)"
    more = f" (+{err.error_count() - 1} more)" if err.error_count() > 1 else ""
    return CatalogueError(f"{_rel(path)}: {where}: field {field_name}: {first['msg']}{more}")


# libyaml's C parser when PyYAML was built with it (it is here): the catalogue's ~100 files load twice as fast
_YAML_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def _read_yaml(path: Path) -> Any:
    try:
        return yaml.load(path.read_text(encoding="utf-8"), Loader=_YAML_LOADER)
    except yaml.YAMLError as exc:
        raise CatalogueError(f"{_rel(path)}: not valid YAML: {exc}") from exc


def check_runner(ref: str) -> str | None:
    """Return why `module:function` cannot be imported, or None; parses the source instead of importing it."""
    module, _, func = ref.partition(":")
    try:
        spec = importlib.util.find_spec(module)
    except (ImportError, ValueError) as exc:
        return f"module {module!r} cannot be found ({exc})"
    if spec is None or spec.origin is None or not spec.origin.endswith(".py"):
        return f"module {module!r} cannot be found"
    origin = Path(spec.origin)
    if func not in _top_level_functions(origin, origin.stat().st_mtime_ns):
        return f"module {module!r} has no top-level function {func!r}"
    return None


@cache
def _top_level_functions(origin: Path, mtime_ns: int) -> frozenset[str]:
    """Names of a module's top-level functions; parsed once per module version (many bindings share a module)."""
    tree = ast.parse(origin.read_text(encoding="utf-8"))
    return frozenset(n.name for n in tree.body if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef))


def runner_params_model(ref: str) -> type[Params]:
    """The runner's `Params` model (imports the runner's module); `NoParams` for a runner that takes only ctx."""
    module, _, func = ref.partition(":")
    return params_model(getattr(importlib.import_module(module), func))


def check_params(ref: str, params: dict[str, Any], quick: dict[str, Any]) -> str | None:
    """Why the binding's params (and params + quick) do not fit the runner's model, or None."""
    try:
        model = runner_params_model(ref)
    except (ImportError, AttributeError, TypeError) as exc:
        return f"runner {ref}: {type(exc).__name__}: {exc}"
    for label, values in (("params", params), ("quick", {**params, **quick})):
        try:
            validate(model, values)
        except ParamsError as exc:
            return f"{label}: {exc}"
    return None


def fingerprint(days_dir: Path, bindings: list[Path], sources: tuple[Path, ...] = ()) -> str:
    """A digest of every input of the runner check: day and binding files (content), the Python sources under
    ailab/ and workloads/ (path, size, mtime) and the versions of Python and pydantic."""
    import pydantic

    h = hashlib.sha256(f"{sys.version}|{pydantic.VERSION}".encode())
    for path in [*sorted(days_dir.glob("d*.yaml")), *bindings]:
        h.update(str(path).encode() + b"\0" + path.read_bytes() + b"\0")
    for top in sources or (REPO_ROOT / "ailab", WORKLOADS_DIR):
        for root, dirs, files in os.walk(top):
            dirs[:] = sorted(d for d in dirs if d != "__pycache__")
            for name in sorted(files):
                if name.endswith(".py"):
                    st = os.stat(os.path.join(root, name))
                    h.update(f"{root}/{name}|{st.st_size}|{st.st_mtime_ns}\n".encode())
    return h.hexdigest()


def _stamp_path() -> Path:
    return state_dir() / "cache" / "catalogue-validated"


def _stamped(digest: str) -> bool:
    try:
        return _stamp_path().read_text().strip() == digest
    except OSError:
        return False


def _stamp(digest: str) -> None:
    """Record the digest, only in a state dir that exists: loading the catalogue creates nothing (a `lab run` refused
    for a bad value must leave no trace)."""
    path = _stamp_path()
    if not state_dir().is_dir():
        return
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".{os.getpid()}")
        tmp.write_text(digest + "\n")
        os.replace(tmp, path)
    except OSError:
        pass  # a read-only state dir only costs the next load its check


def load_catalogue(
    days_dir: Path = DAYS_DIR,
    bindings: list[Path] | None = None,
    check_runners: bool = True,
    use_stamp: bool = True,
) -> Catalogue:
    """Load every day and binding, validate them, and fail on the first error with file, day and field.

    `check_runners` also imports each runner's module to validate the binding's parameters against its model; for
    the repository's own catalogue that is skipped when the stamp says these very inputs validated before (unless
    `use_stamp` is False).
    """
    digest = None
    if check_runners and use_stamp and days_dir == DAYS_DIR and bindings is None:
        digest = fingerprint(days_dir, binding_files())
        check_runners = not _stamped(digest)
    days: dict[int, Day] = {}
    files = sorted(days_dir.glob("d*.yaml"))
    if not files:
        raise CatalogueError(f"{_rel(days_dir)}: no day files (dNN.yaml)")
    for path in files:
        raw = _read_yaml(path)
        if not isinstance(raw, dict):
            raise CatalogueError(f"{_rel(path)}: expected a mapping at the top level")
        where = f"day {raw.get('day', '?')}"
        try:
            day = Day.model_validate(raw)
        except ValidationError as exc:
            raise _validation_error(path, where, exc) from None
        if path.stem != day.id:
            raise CatalogueError(f"{_rel(path)}: {where}: field day: file name says {path.stem}, content says {day.id}")
        if day.day in days:
            raise CatalogueError(f"{_rel(path)}: {where}: field day: day {day.day} defined twice")
        days[day.day] = day

    missing = sorted(set(range(1, 91)) - set(days)) if days_dir == DAYS_DIR else []
    if missing:
        raise CatalogueError(f"{_rel(days_dir)}: days missing: {', '.join(f'd{n:02d}' for n in missing)}")

    experiments: dict[str, Experiment] = {e.id: e for d in days.values() for e in d.experiments}
    bound_in: dict[str, Path] = {}
    for path in binding_files() if bindings is None else bindings:
        raw = _read_yaml(path) or {}
        if not isinstance(raw, dict):
            raise CatalogueError(f"{_rel(path)}: expected a mapping of experiment id -> binding")
        for exp_id, spec in raw.items():
            where = f"day {str(exp_id)[1:3]}"
            if exp_id not in experiments:
                raise CatalogueError(f"{_rel(path)}: {where}: field {exp_id}: unknown experiment id")
            if exp_id in bound_in:
                raise CatalogueError(
                    f"{_rel(path)}: {where}: field {exp_id}: already bound in {_rel(bound_in[exp_id])}"
                )
            try:
                binding = Binding.model_validate(spec)
            except ValidationError as exc:
                raise _validation_error(
                    path,
                    where,
                    ValidationError.from_exception_data(
                        exc.title,
                        [{**e, "loc": (exp_id, *e["loc"])} for e in exc.errors()],  # type: ignore[misc]
                    ),
                ) from None
            if check_runners and (why := check_runner(binding.runner)):
                raise CatalogueError(f"{_rel(path)}: {where}: field {exp_id}.runner: {why}")
            if check_runners and (why := check_params(binding.runner, binding.params, binding.quick)):
                raise CatalogueError(f"{_rel(path)}: {where}: experiment {exp_id}: {why}")
            bound_in[exp_id] = path
            experiments[exp_id] = experiments[exp_id].model_copy(update={"binding": binding})

    # rebuild days so each Day carries its bound experiments
    for n, day in days.items():
        days[n] = day.model_copy(update={"experiments": [experiments[e.id] for e in day.experiments]})
    for n, day in days.items():
        for i, d in enumerate(day.deliverables):
            if d.experiment and d.experiment not in experiments:
                raise CatalogueError(
                    f"{_rel(days_dir / f'{day.id}.yaml')}: day {n}: field deliverables[{i}].experiment: "
                    f"unknown experiment id {d.experiment!r}"
                )
    if digest is not None and check_runners:
        _stamp(digest)
    return Catalogue(days=dict(sorted(days.items())), experiments=experiments)


@lru_cache(maxsize=1)
def catalogue() -> Catalogue:
    """The repository's catalogue, loaded once per process."""
    return load_catalogue()
