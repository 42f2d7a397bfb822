"""Canary rollout and rollback under explicit model control (d05.e5): v1 serving, canary v2 by a client-side split
and a health gate, bad versions v3 (NaN weights) and v4 (corrupt file) rolled back, release rollback to v1.
The drill: workloads/serving/rollout.py; the traffic split and the gate: workloads/serving/canary.py."""

from __future__ import annotations

from typing import Annotated, Any, Literal, Self

from pydantic import Field, field_validator, model_validator

from ailab.contract import Context, Output, Params
from workloads.serving.experiments import Int, Num

GOOD, BAD = (1, 2), (3, 4)  # versions the drill writes: valid networks; NaN weights and a corrupt file


class CanaryParams(Params):
    stable: Literal[1, 2] = Field(default=1, description="the version serving first (a valid network)")
    canary: Literal[1, 2] = Field(default=2, description="the valid version rolled out as a canary")
    bad: list[Literal[3, 4]] = Field(default=[3, 4], description="bad versions tried as canaries (3 NaN, 4 corrupt)")
    split: Annotated[list[Annotated[Int, Field(ge=0)]], Field(min_length=2, max_length=2)] = Field(
        default=[90, 10], description="[stable %, canary %] of requests during a canary phase, summing to 100"
    )
    concurrency: Annotated[Int, Field(ge=1, le=256)] = 4
    phase_s: Annotated[Num, Field(ge=0.1, le=60)] = Field(default=2.0, description="steady phase length, s")
    max_error_rate: Annotated[Num, Field(ge=0, le=1)] = 0.01
    max_p99_ratio: Annotated[Num, Field(ge=1, le=100)] = Field(default=3.0, description="canary p99 / stable p99")
    p99_slack_ms: Annotated[Num, Field(ge=0, le=10_000)] = 5.0
    min_agreement: Annotated[Num, Field(ge=0, le=1)] = Field(default=0.9, description="top-1 agreement with stable")
    probe_size: Annotated[Int, Field(ge=1, le=1024)] = Field(default=64, description="digits in the output probe")
    warmup_requests: Annotated[Int, Field(ge=0, le=10_000)] = 20
    seed: Annotated[Int, Field(ge=0, le=2**31)] = 0

    @field_validator("stable", "canary", "bad", mode="before")
    @classmethod
    def _no_bools(cls, v: Any) -> Any:
        if isinstance(v, bool) or (isinstance(v, list) and any(isinstance(x, bool) for x in v)):
            raise ValueError("a version number, not a boolean")
        return v

    @field_validator("bad")
    @classmethod
    def _dedupe(cls, v: list[int]) -> list[int]:
        return list(dict.fromkeys(v))

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        if self.canary == self.stable:
            raise ValueError(f"canary {self.canary}: must be the valid version other than stable ({self.stable})")
        if sum(self.split) != 100 or self.split[1] == 0:
            raise ValueError(f"split {list(self.split)}: [stable %, canary %] must sum to 100 with canary > 0")
        return self


def canary_rollout(ctx: Context, p: CanaryParams) -> Output:
    """Explicit model control: load v1, canary v2 with a traffic split and gate, bad versions rolled back."""
    from workloads.serving.rollout import drill

    return drill(ctx, p)
