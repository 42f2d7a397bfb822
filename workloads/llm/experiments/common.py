"""Typed parameter pieces shared by the LLM runners (not a runner): the model shape, per-device values, helpers.

A runner's parameters hold the CPU value of a setting as `<name>` and, where a GPU run needs a larger one, the CUDA
value as `cuda_<name>`; `p.for_device(ctx.device)` gives the parameters the run uses (`cuda_<name>` wins on CUDA
when given). Free of torch at import, so the catalogue imports the runner modules cheaply.
"""

from __future__ import annotations

import statistics
from typing import TYPE_CHECKING, Annotated, Any, Literal, Self

from pydantic import Field, model_validator

from ailab.contract import Context, Params

if TYPE_CHECKING:
    from workloads.llm.model import DecoderLM, ModelConfig

Count = Annotated[int, Field(strict=True, ge=1)]
NonNegative = Annotated[int, Field(strict=True, ge=0)]
NewTokens = Annotated[int, Field(strict=True, ge=2, description="tokens generated per request (TTFT + >= 1 step)")]
Share = Annotated[float, Field(strict=True, ge=0, le=1)]
Counts = Annotated[list[Count], Field(min_length=1)]
Windows = Annotated[list[Count | None], Field(min_length=1)]  # null: no window (full cache) / one shot (no chunks)
Shares = Annotated[list[Share], Field(min_length=1)]


class ModelSpec(Params):
    """Shape and numerics of the random-weight decoder (workloads.llm.model.ModelConfig), checked at load."""

    vocab_size: Count = 128
    d_model: Count = 128
    n_layers: Count = 2
    n_heads: Count = 4
    d_ff: NonNegative = Field(0, description="0 -> 4 * d_model")
    rope_base: float = Field(10000.0, gt=1)
    dtype: Literal["float32", "bfloat16", "float16"] = "float32"
    seed: NonNegative = 0

    @model_validator(mode="after")
    def _heads_split_d_model(self) -> Self:
        if self.d_model % self.n_heads:
            raise ValueError(f"d_model {self.d_model} must be a multiple of n_heads ({self.n_heads})")
        if (self.d_model // self.n_heads) % 2:
            raise ValueError(f"n_heads {self.n_heads} gives an odd head_dim (RoPE rotates pairs): choose an even one")
        return self


class LLMParams(Params):
    """Base of the LLM runners' parameters: the timed model (CPU / CUDA) and the torch CPU thread count."""

    model: ModelSpec = Field(default_factory=ModelSpec, description="random-weight model timed on CPU")
    cuda_model: ModelSpec | None = Field(None, description="the model timed with --device cuda")
    threads: Count = Field(1, description="torch CPU threads (2 threads on a loaded 2-core host stall every op)")

    @classmethod
    def __pydantic_init_subclass__(cls, **kwargs: Any) -> None:
        super().__pydantic_init_subclass__(**kwargs)
        for name in cls.model_fields:
            if name.startswith("cuda_") and name.removeprefix("cuda_") not in cls.model_fields:
                raise TypeError(f"{cls.__name__}.{name} has no CPU field {name.removeprefix('cuda_')!r}")

    def for_device(self, device: str) -> Self:
        """The parameters of a run on `device`: on CUDA each given `cuda_<name>` replaces `<name>`."""
        if device != "cuda":
            return self
        cuda = {n.removeprefix("cuda_"): getattr(self, n) for n in type(self).model_fields if n.startswith("cuda_")}
        return self.model_copy(update={n: v for n, v in cuda.items() if v is not None})


class BudgetParams(LLMParams):
    """A time budget for the run (workloads/llm/budget.py): rows that do not fit are recorded as not done."""

    budget_s: float | None = Field(None, gt=0, description="seconds for the whole run; null: no budget")
    cuda_budget_s: float | None = Field(None, gt=0, description="the budget of a --device cuda run")


def build_model(ctx: Context, p: LLMParams) -> tuple[DecoderLM, ModelConfig]:
    """The random-weight model of p.model (after for_device) on ctx.device; float16 is refused on CPU."""
    import torch

    from workloads.llm.model import ModelConfig, bad, build

    if ctx.device == "cpu" and p.model.dtype == "float16":
        raise bad("params.model.dtype", p.model.dtype, "float32 or bfloat16 on CPU")
    if ctx.device == "cpu":
        torch.set_num_threads(p.threads)
    cfg = ModelConfig(**p.model.model_dump())
    return build(cfg, ctx.device), cfg


def threads_note(ctx: Context) -> str:
    """Caption fragment naming the torch CPU thread count (timings depend on it)."""
    import torch

    return f" torch CPU threads: {torch.get_num_threads()}." if ctx.device == "cpu" else ""


def median(xs: list[float]) -> float:
    return statistics.median(xs) if xs else float("nan")


def mib(n_bytes: float) -> float:
    return n_bytes / 2**20
