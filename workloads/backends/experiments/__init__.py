"""Backends-area runners (one module per idea), bound in workloads/backends/bindings.yaml.

Runner modules import only pydantic and `ailab.contract` at import time; the tokenizer, the compilers' output,
numba and tritonclient are imported inside the runners. Integers and numbers are strict (a YAML `true` is not 1).
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, Strict

Int = Annotated[int, Strict()]
Seconds = Annotated[float, Strict(), Field(gt=0, le=600, description="measured window, s")]
Warmup = Annotated[float, Strict(), Field(ge=0, le=60, description="load before each measured window, not counted, s")]
Concurrency = Annotated[int, Strict(), Field(ge=1, le=256, description="closed loop: requests in flight")]
Words = Annotated[int, Strict(), Field(ge=1, le=2000, description="words per request text (from docs/)")]
Batch = Annotated[int, Strict(), Field(ge=1, le=64, description="texts per request (at most max_batch_size)")]
Impl = Literal["python", "numba", "cython", "cpp"]
OptLevel = Literal["-O0", "-O1", "-O2", "-O3"]
