"""One tritonserver for the whole session, over a repository that uses every spec feature the lab generates;
explicit model control so tests can unload and load models. Runners and the harness get the real local platform
(ailab.local.platform.Platform on free ports) through their Context, as `lab run` gives it to them."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np
import onnxruntime as ort
import pytest

from ailab.runner import local_context as context
from workloads.serving import harness
from workloads.serving.repository import (
    DynamicBatching,
    InstanceGroup,
    QueuePolicy,
    RateLimiter,
    TensorSpec,
    VersionPolicy,
    mlp_spec,
    model_cache,
)

FULL_IN = (TensorSpec("input", "FP32", (-1, 1, 28, 28)),)
FULL_OUT = (TensorSpec("logits", "FP32", (-1, 10)),)

SPECS = [
    mlp_spec("mlp", dynamic_batching=DynamicBatching(preferred_batch_sizes=(8, 16), max_queue_delay_us=1000)),
    # a long queue delay so that concurrent requests certainly meet in one execution
    mlp_spec("mlp_batch", dynamic_batching=DynamicBatching(preferred_batch_sizes=(24,), max_queue_delay_us=200_000)),
    mlp_spec("mlp_nobatch"),
    mlp_spec("mlp_zero", max_batch_size=0, inputs=FULL_IN, outputs=FULL_OUT),
    mlp_spec("mlp_versions", versions=(1, 2, 3), version_policy=VersionPolicy("specific", versions=(1, 3))),
    mlp_spec(
        "mlp_sched",
        instance_groups=(InstanceGroup(count=2, rate_limiter=RateLimiter({"R1": 1}, priority=2)),),
        dynamic_batching=DynamicBatching(
            preferred_batch_sizes=(4,),
            max_queue_delay_us=500,
            priority_levels=2,
            default_priority_level=1,
            queue_policy=QueuePolicy("REJECT", default_timeout_us=5_000_000, max_queue_size=128),
        ),
    ),
    mlp_spec("mlp_cache", response_cache=True),
    mlp_spec("mlp_torch", runtime="torch"),  # the CUDA path's code on CPU (KIND_GPU needs a GPU host)
]


@pytest.fixture(scope="session")
def make_context() -> Any:
    """Context(experiment_id, workdir) with the real local platform, for calling runners as the lab does."""
    return context


@pytest.fixture(scope="session")
def triton(tmp_path_factory: pytest.TempPathFactory) -> Iterator[harness.Served]:
    ctx = context("serving-tests", tmp_path_factory.mktemp("triton"))
    with harness.serve(ctx, SPECS, control_mode="explicit", load_models=[s.name for s in SPECS]) as srv:
        yield srv


@pytest.fixture(scope="session")
def specs() -> list:
    return SPECS


@pytest.fixture(scope="session")
def reference() -> ort.InferenceSession:
    """The same ONNX file run by onnxruntime directly: what the server must return."""
    return ort.InferenceSession(str(model_cache() / "mlp.onnx"), providers=["CPUExecutionProvider"])


@pytest.fixture(scope="session")
def digits() -> np.ndarray:
    from workloads.models.mlp import sample_inputs

    return sample_inputs(6)[0]
