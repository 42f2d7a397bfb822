"""Hot updates under load: the serving version switched (and rolled back) by explicit load or by poll, with latency,
failed requests, Triton's metrics and log lines recorded (d25.e3, d25.e4, d25.e5, d34.e2, d34.e3).
The drill: workloads/modelcontrol/update.py."""

from __future__ import annotations

from typing import Annotated, Any, Literal, Self

from pydantic import Field, field_validator, model_validator

from ailab.contract import Context, Output, Params
from workloads.serving.experiments import AutoComplete, Int, Num

Version = Literal[1, 2]


class HotUpdateParams(Params):
    mode: Literal["explicit", "poll"] = Field(default="explicit", description="how the switch reaches the server")
    poll_secs: Annotated[Int, Field(ge=1, le=60)] = Field(default=1, description="--repository-poll-secs (poll)")
    start: Version = Field(default=1, description="the version serving first")
    switches: Annotated[list[Version], Field(min_length=1, max_length=20)] = Field(
        default=[2, 1], description="versions switched to in order (a switch back is a rollback)"
    )
    load: Literal["open", "closed"] = "open"
    qps: Annotated[Num, Field(gt=0, le=5000)] = Field(default=200.0, description="open loop arrival rate")
    concurrency: Annotated[Int, Field(ge=1, le=256)] = Field(default=4, description="closed loop requests in flight")
    phase_s: Annotated[Num, Field(ge=0.5, le=120)] = Field(
        default=3.0, description="steady time before each switch (after the previous one settled) and after the last"
    )
    switch_budget_s: Annotated[Num, Field(ge=1, le=120)] = Field(
        default=8.0, description="most time given to each switch to settle (the next phase starts once it has)"
    )
    scrape_s: Annotated[Num, Field(ge=0.1, le=10)] = Field(default=0.5, description="metrics scrape interval")
    load_warmup_s: Annotated[Num, Field(ge=0.1, le=30)] = Field(
        default=1.0, description="load sent before the timeline starts (the served version is warmed before that)"
    )
    bucket_s: Annotated[Num, Field(ge=0.05, le=10)] = Field(default=0.25, description="timeline bucket width")
    auto_complete_config: AutoComplete = True

    @field_validator("start", "switches", mode="before")
    @classmethod
    def _no_bools(cls, v: Any) -> Any:
        if isinstance(v, bool) or (isinstance(v, list) and any(isinstance(x, bool) for x in v)):
            raise ValueError("a version number, not a boolean")
        return v

    @model_validator(mode="after")
    def _each_switch_changes_version(self) -> Self:
        prev = self.start
        for i, v in enumerate(self.switches):
            if v == prev:
                raise ValueError(f"switches[{i}] {v}: the version already serving (each switch must change it)")
            prev = v
        return self


def hot_update(ctx: Context, p: HotUpdateParams) -> Output:
    """Switch the serving version under load; per switch the time to settle and the failed requests."""
    from workloads.modelcontrol.update import run

    return run(ctx, p)
