"""Typed schema of the curriculum catalogue: days, deliverables, experiments and their needs."""

from __future__ import annotations

import re
from enum import StrEnum
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

EXPERIMENT_ID = re.compile(r"^d(\d{2})\.e([1-5])$")
RUNNER_REF = re.compile(r"^[A-Za-z_][\w.]*:[A-Za-z_]\w*$")


class Need(StrEnum):
    """What an experiment needs from the host it runs on."""

    gpu = "gpu"
    multi_gpu = "multi_gpu"
    tensorrt = "tensorrt"
    cluster = "cluster"
    container_engine = "container_engine"
    local_platform = "local_platform"


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Title(Strict):
    zh: str = Field(min_length=1)
    en: str = Field(min_length=1)


class Deliverable(Strict):
    """A deliverable of the day, mapped to the repo path or experiment that provides it, or planned."""

    text: str = Field(min_length=1)
    path: str | None = None
    experiment: str | None = None
    planned: bool = False

    @model_validator(mode="after")
    def _exactly_one(self) -> Deliverable:
        chosen = [self.path is not None, self.experiment is not None, self.planned]
        if sum(chosen) != 1:
            raise ValueError("give exactly one of 'path', 'experiment' or 'planned: true'")
        return self


class Binding(Strict):
    """How the lab runs an experiment: its runner, default parameters and what the runner needs."""

    runner: str
    params: dict[str, Any] = Field(default_factory=dict)
    needs: list[Need] = Field(default_factory=list)
    quick: dict[str, Any] = Field(default_factory=dict)  # parameter overrides for --quick runs
    # services a quick run's pool starts when the run begins, for this experiment to borrow (ailab/local/pool.py):
    # a Prometheus whose first target-discovery tick, 5 s after its start, has passed by then
    quick_services: list[Literal["prometheus"]] = Field(default_factory=list)

    @field_validator("runner")
    @classmethod
    def _runner_ref(cls, v: str) -> str:
        if not RUNNER_REF.match(v):
            raise ValueError(f"runner {v!r} is not 'package.module:function'")
        return v


class Experiment(Strict):
    id: str
    text: str = Field(min_length=1)  # the curriculum's own words (Chinese)
    summary: str = Field(min_length=1)  # English summary
    needs: list[Need] = Field(default_factory=list)  # what the experiment as written needs
    writing: bool = False  # a writing task: only a person can write it (the lab fills a template with facts)
    binding: Binding | None = None  # filled from workloads/<area>/bindings.yaml by the loader

    @field_validator("id")
    @classmethod
    def _id(cls, v: str) -> str:
        if not EXPERIMENT_ID.match(v):
            raise ValueError(f"experiment id {v!r} is not of the form dNN.eK (K 1-5)")
        return v

    @property
    def day(self) -> int:
        return int(self.id[1:3])

    @property
    def runner(self) -> str:
        return self.binding.runner if self.binding else "planned"

    @property
    def effective_needs(self) -> list[Need]:
        """Needs of the implementation when bound, else of the experiment as written."""
        return list(self.binding.needs) if self.binding else list(self.needs)


class Day(Strict):
    day: int = Field(ge=1, le=90)
    week: int = Field(ge=1, le=13)
    title: Title
    goals: list[str] = Field(min_length=1)
    key_points: list[str] = Field(min_length=1)
    deliverables: list[Deliverable] = Field(min_length=1)
    questions: list[str] = Field(min_length=6, max_length=6)
    experiments: list[Experiment] = Field(min_length=5, max_length=5)

    @property
    def id(self) -> str:
        return f"d{self.day:02d}"

    @model_validator(mode="after")
    def _experiment_ids_match_day(self) -> Day:
        for i, exp in enumerate(self.experiments, 1):
            want = f"d{self.day:02d}.e{i}"
            if exp.id != want:
                raise ValueError(f"experiments[{i - 1}].id is {exp.id!r}, expected {want!r}")
        return self
