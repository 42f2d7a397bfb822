"""Facts both planes read, kept as data under ailab/contract/facts/ and checked when loaded.

- `images()`: the workload images (tag, registry, Dockerfiles, bases) and the third-party image pins.
- `operator()`: the ModelDeployment custom resource's group, version, kind and names.
- `weeks()` / `week(n)`: what each curriculum week turns on (cluster components, local services, models).
- `mig_profiles()`: MIG GPU-instance profiles per GPU model, with compute and memory slices.

A bad file raises `FactsError` naming the file, the field (`weeks.7.models`), the value and what is allowed.
Each loader reads its file once per process; `reload()` forgets what was read (tests that write files).
"""

from __future__ import annotations

import functools
import os
import re
from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

FACTS_DIR = Path(__file__).with_name("facts")
WEEKS = range(1, 14)

_NAME = r"^[a-z0-9]([-a-z0-9_]*[a-z0-9])?$"


class FactsError(ValueError):
    """A facts file is unreadable or invalid; the message names the file, the field, the value and what is allowed."""


class _F(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


# --- images.yaml --------------------------------------------------------------------------------------------


class WorkloadImage(_F):
    """One workload image: its Dockerfile (relative to workloads/images/) and how it may be built."""

    dockerfile: str
    description: str
    gpu_base: str  # a key of Images.bases
    local_base: str | None  # a key of Images.bases; None: needs a CUDA base
    build_args: dict[str, str] = {}
    variants: dict[str, dict[str, str]] = {}


class Images(_F):
    """The image catalogue: workload images `<registry>/ailab-<name>:<tag>` and pinned third-party images."""

    tag: str = Field(pattern=r"^\d+\.\d+\.\d+$")
    registry: str
    registry_env: str = Field(pattern=r"^[A-Z][A-Z0-9_]*$")
    bases: dict[str, str]
    workload: dict[str, WorkloadImage]
    third_party: dict[str, str]

    @model_validator(mode="after")
    def _bases_exist(self) -> Images:
        for name, img in self.workload.items():
            if not re.fullmatch(_NAME, name):
                raise ValueError(f"workload.{name}: image names are lowercase letters, digits and '-'")
            for field, base in (("gpu_base", img.gpu_base), ("local_base", img.local_base)):
                if base is not None and base not in self.bases:
                    raise ValueError(
                        f"workload.{name}.{field} = {base!r}: not one of bases (allowed: {', '.join(self.bases)})"
                    )
        return self

    def current_registry(self) -> str:
        """The registry in use: the environment variable `registry_env` if set, else `registry`."""
        return os.environ.get(self.registry_env, self.registry)

    def ref(self, name: str, registry: str | None = None) -> str:
        """Full reference `<registry>/ailab-<name>:<tag>` of workload image `name`; KeyError names the allowed."""
        if name not in self.workload:
            raise KeyError(f"image {name!r}: unknown (allowed: {', '.join(self.workload)})")
        return f"{(registry or self.current_registry()).rstrip('/')}/ailab-{name}:{self.tag}"

    def pinned(self, name: str) -> str:
        """Reference of third-party image `name` (tritonserver, dcgm-exporter, ...); KeyError names the allowed."""
        if name not in self.third_party:
            raise KeyError(f"third-party image {name!r}: unknown (allowed: {', '.join(self.third_party)})")
        return self.third_party[name]


# --- operator.yaml ------------------------------------------------------------------------------------------


class OperatorFacts(_F):
    """Identity of the ModelDeployment custom resource."""

    group: str = Field(pattern=r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)+$")
    version: str = Field(pattern=r"^v\d+((alpha|beta)\d+)?$")
    kind: str = Field(pattern=r"^[A-Z][A-Za-z0-9]*$")
    plural: str = Field(pattern=r"^[a-z][a-z0-9]*$")
    singular: str = Field(pattern=r"^[a-z][a-z0-9]*$")
    short_names: tuple[str, ...] = ()

    @property
    def api_version(self) -> str:
        """group/version, e.g. lab.ailab.dev/v1alpha1."""
        return f"{self.group}/{self.version}"

    @property
    def crd_name(self) -> str:
        """<plural>.<group>, the CustomResourceDefinition's metadata.name."""
        return f"{self.plural}.{self.group}"


# --- weeks.yaml ---------------------------------------------------------------------------------------------


class WeekFacts(_F):
    """What one week turns on: cluster components with their settings, local services, served models."""

    days: str = Field(pattern=r"^\d+-\d+$")
    about: str
    cluster: dict[str, dict[str, Any]]  # component or section -> settings (checked by ailab/platform)
    local: tuple[str, ...]
    models: tuple[str, ...] = Field(min_length=1)

    @field_validator("local", "models")
    @classmethod
    def _unique_names(cls, v: tuple[str, ...]) -> tuple[str, ...]:
        bad = [n for n in v if not re.fullmatch(_NAME, n)]
        if bad:
            raise ValueError(f"{bad[0]!r}: names are lowercase letters, digits, '-' and '_'")
        dup = sorted({n for n in v if v.count(n) > 1})
        if dup:
            raise ValueError(f"{', '.join(dup)} listed twice")
        return v


class Weeks(_F):
    weeks: dict[int, WeekFacts]

    @field_validator("weeks")
    @classmethod
    def _all_weeks(cls, v: dict[int, WeekFacts]) -> dict[int, WeekFacts]:
        missing = [w for w in WEEKS if w not in v]
        extra = [w for w in v if w not in WEEKS]
        if missing or extra:
            raise ValueError(f"weeks 1-13 each once (missing: {missing or '-'}, unknown: {extra or '-'})")
        return v


# --- mig_profiles.yaml --------------------------------------------------------------------------------------


class MigProfile(_F):
    compute: int = Field(ge=1, le=8)  # compute slices (the "Ng" of the name)
    memory: int = Field(ge=1, le=8)  # memory slices
    max_instances: int = Field(ge=1, le=7)  # instances of this profile one GPU holds


class MigGpu(_F):
    compute_slices: int = Field(ge=1, le=8)
    memory_slices: int = Field(ge=1, le=8)
    profiles: dict[str, MigProfile] = Field(min_length=1)

    @model_validator(mode="after")
    def _fits(self) -> MigGpu:
        for name, p in self.profiles.items():
            m = re.fullmatch(r"(\d)g\.(\d+)gb(\+me)?", name)
            if not m:
                raise ValueError(f"profiles.{name}: not a MIG profile name (<N>g.<M>gb or <N>g.<M>gb+me)")
            if int(m.group(1)) != p.compute:
                raise ValueError(f"profiles.{name}.compute = {p.compute}: the name says {m.group(1)}")
            if p.compute > self.compute_slices or p.memory > self.memory_slices:
                raise ValueError(
                    f"profiles.{name}: {p.compute} compute / {p.memory} memory slices exceed the GPU's "
                    f"{self.compute_slices} / {self.memory_slices}"
                )
        return self

    def fits(self, layout: dict[str, int]) -> bool:
        """True when `layout` (profile -> count) uses only this GPU's profiles, within their counts and slices.

        A necessary condition: NVIDIA's placement rules can still refuse some orders of creation."""
        if any(p not in self.profiles or n > self.profiles[p].max_instances for p, n in layout.items()):
            return False
        compute = sum(self.profiles[p].compute * n for p, n in layout.items())
        memory = sum(self.profiles[p].memory * n for p, n in layout.items())
        return compute <= self.compute_slices and memory <= self.memory_slices


class MigProfiles(_F):
    gpus: dict[str, MigGpu] = Field(min_length=1)

    def names(self) -> list[str]:
        """Every profile name, in table order (GPU by GPU), each once."""
        return list(dict.fromkeys(p for g in self.gpus.values() for p in g.profiles))

    def gpus_fitting(self, layout: dict[str, int]) -> list[str]:
        """GPU models on which `layout` fits (see MigGpu.fits)."""
        return [name for name, g in self.gpus.items() if g.fits(layout)]


# --- loading ------------------------------------------------------------------------------------------------

M = TypeVar("M", bound=BaseModel)


def _rel(path: Path) -> str:
    try:
        return str(path.relative_to(FACTS_DIR.parents[1]))
    except ValueError:
        return str(path)


def load(path: Path, model: type[M]) -> M:
    """Read YAML file `path` into `model`; FactsError naming the file and each bad field otherwise."""
    name = _rel(path)
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise FactsError(f"{name}: cannot read ({exc.strerror})") from None
    except yaml.YAMLError as exc:
        raise FactsError(f"{name}: not valid YAML ({exc})") from None
    try:
        return model.model_validate(data if data is not None else {})
    except ValidationError as exc:
        lines = []
        for e in exc.errors():
            field = ".".join(str(p) for p in e["loc"])
            msg = re.sub(r"^Value error, ", "", e["msg"])
            value = e.get("input")
            shown = "" if e["type"] == "missing" or isinstance(value, (dict, list)) else f" = {value!r}"
            # a check across fields (model validator) names its own field path at the start of its message
            lines.append(f"{name}: {field}{shown}: {msg}" if field else f"{name}: {msg}")
        raise FactsError("\n".join(lines)) from None


@functools.cache
def images() -> Images:
    return load(FACTS_DIR / "images.yaml", Images)


@functools.cache
def operator() -> OperatorFacts:
    return load(FACTS_DIR / "operator.yaml", OperatorFacts)


@functools.cache
def weeks() -> Weeks:
    return load(FACTS_DIR / "weeks.yaml", Weeks)


def week(n: int) -> WeekFacts:
    """Facts of week `n` (1-13); FactsError naming the allowed weeks otherwise."""
    if n not in WEEKS:
        raise FactsError(f"week {n!r}: unknown (allowed: 1-13)")
    return weeks().weeks[n]


@functools.cache
def mig_profiles() -> MigProfiles:
    return load(FACTS_DIR / "mig_profiles.yaml", MigProfiles)


def reload() -> None:
    """Forget every loaded file (the next call reads it again)."""
    for f in (images, operator, weeks, mig_profiles):
        f.cache_clear()
