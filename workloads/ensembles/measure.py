"""What the ensemble runners share: one load run through the lab's generator with the pipeline's raw-image input,
and Triton's per-model counters for every step read around it."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from workloads.ensembles.pipeline import raw_images
from workloads.serving import harness, loadgen, metrics
from workloads.serving.client import Client
from workloads.serving.common import load


def inputs_for(model: str, batch: int) -> dict[str, np.ndarray]:
    """The request body each model of the pipeline takes: raw images, or (for the bare MLP) preprocessed pixels."""
    from workloads.models.data import preprocess

    images = raw_images(batch)
    return {"input": preprocess(images)} if model == "mlp" else {"image": images}


def warm(served: harness.Served, models: Sequence[str], n: int = 20) -> None:
    """n requests per model before anything is measured (first requests pay lazy initialisation)."""
    with Client(served.address("grpc"), "grpc", timeout_s=60) as c:
        for m in models:
            x = inputs_for(m, 1)
            for _ in range(n):
                c.infer(m, x)


@dataclass
class StepRun:
    result: loadgen.LoadResult
    server_cpu: float  # cores used by tritonserver and its stubs over the run
    steps: dict[str, metrics.ModelCounters]  # model -> counters over the run (ensemble and its steps)


def run(served: harness.Served, model: str, watch: Sequence[str], batch: int = 1, **kw: Any) -> StepRun:
    """Load `model` through the lab's generator; Triton's counters of every model in `watch` diffed over the run."""
    before = {m: metrics.read(served.metrics_url, m) for m in watch}
    res, cpu = load(served, model, inputs=inputs_for(model, batch), batch=batch, **kw)
    after = {m: metrics.read(served.metrics_url, m) for m in watch}
    return StepRun(res, cpu, {m: after[m] - before[m] for m in watch})


def us_per_request(c: metrics.ModelCounters, field_name: str) -> float:
    return round(c.per_request_us(field_name), 1)
