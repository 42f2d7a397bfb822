"""Serving-area runners (one module per idea), bound in workloads/serving/bindings.yaml.

Runner modules import only pydantic, numpy and `ailab.contract` at import time: the serving library modules that
pull in tritonclient, onnx or torch (harness, client, loadgen, repository, ...) are imported inside the runners.
The field types below carry the checks every serving runner shares; integers and numbers are strict (a YAML
`true` is not 1), so a wrong value fails when the catalogue loads, naming the field.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated, Literal

from pydantic import AfterValidator, Field, Strict

from ailab.contract.durations import SCRAPE_INTERVALS

Int = Annotated[int, Strict()]
Num = Annotated[float, Strict()]
Seconds = Annotated[float, Strict(), Field(gt=0, le=600, description="measured window, s")]
Concurrency = Annotated[int, Strict(), Field(ge=1, le=4096, description="closed loop: requests in flight")]
Concurrencies = Annotated[list[Concurrency], Field(min_length=1)]
BatchSize = Annotated[int, Strict(), Field(ge=1, le=64, description="at most the MLP's max_batch_size 64")]
PaRequests = Annotated[
    int, Strict(), Field(ge=10, le=100_000, description="perf_analyzer --measurement-request-count per window")
]
Protocol = Literal["grpc", "http"]
Warmup = Annotated[float, Strict(), Field(ge=0, le=60, description="unmeasured lead-in of each load run, s")]


def _scrape_interval(value: str) -> str:
    if value not in SCRAPE_INTERVALS:
        raise ValueError(f"allowed: {', '.join(SCRAPE_INTERVALS)} (the intervals the lab's Prometheus configs use)")
    return value


# Prometheus' scrape interval, one of those the lab's generated configs allow; the runners read it in seconds with
# ailab.contract.durations.seconds()
ScrapeInterval = Annotated[
    str, Strict(), AfterValidator(_scrape_interval), Field(description="Prometheus' scrape interval (500ms, 1s, ...)")
]

AUTO_COMPLETE_OFF = "--disable-auto-complete-config"

AutoComplete = Annotated[
    bool,
    Strict(),
    Field(
        description="tritonserver's config auto-completion; false starts it with --disable-auto-complete-config, so "
        "the python backend starts no auto-complete stub per model load (the generated configs are complete: the "
        "server reports the same config either way). Startup only; what is measured runs on a started server"
    ),
]


def server_args(auto_complete_config: bool, args: Sequence[str] = ()) -> list[str]:
    """The experiment's tritonserver arguments, with auto-completion turned off when asked."""
    return [*args, *(() if auto_complete_config else (AUTO_COMPLETE_OFF,))]
