"""d57 on two real CPU processes over gloo: the pipelined stack equals the unsplit one at every micro-batch count,
data parallelism too, and the runner records the CPU processes as a substitute for two GPUs."""

from __future__ import annotations

from pathlib import Path

import pytest

from ailab.contract import Context
from workloads.parallel.experiments.pipeline import PipelineParams, pipeline

pytestmark = pytest.mark.integration


def test_pipeline_over_gloo_matches_the_unsplit_stack(tmp_path: Path) -> None:
    ctx = Context(experiment_id="d57.e5", device="cpu", quick=True, workdir=tmp_path)
    out = pipeline(ctx, PipelineParams(view="dp_vs_mp", micro=[1, 4]))
    assert out.substitute is not None and "gloo" in out.substitute.used
    (table,) = out.tables
    names = [c.name for c in table.columns]
    rows = {r[0]: dict(zip(names, r, strict=True)) for r in table.rows}
    dp, mp = (
        rows["data parallel"],
        rows["model parallel (pipeline, 1 micro-batches)"]
        if ("model parallel (pipeline, 1 micro-batches)" in rows)
        else next(v for k, v in rows.items() if k.startswith("model parallel")),
    )
    assert dp["max rel. error"] < 1e-5
    assert mp["weights per device"] == pytest.approx(dp["weights per device"] / 2, abs=0.01)  # half the layers each


def test_every_micro_batch_count_reproduces_the_reference(tmp_path: Path) -> None:
    ctx = Context(experiment_id="d57.e2", device="cpu", quick=True, workdir=tmp_path)
    out = pipeline(ctx, PipelineParams(view="micro_batches", micro=[1, 2, 8]))
    (table,) = out.tables
    err = [c.name for c in table.columns].index("max rel. error")
    micro = [c.name for c in table.columns].index("micro-batches")
    assert [r[micro] for r in table.rows] == [1, 2, 8]
    assert all(r[err] < 1e-5 for r in table.rows)
    assert {s.name for s in out.series} == {"latency vs micro-batches", "throughput vs micro-batches"}
