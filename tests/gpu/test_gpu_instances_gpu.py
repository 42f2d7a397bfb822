"""On a GPU host: model instances sharing GPU 0 as d07.e3/d18.e1/d51.e2-e4 run them (real worker processes, real
NVML): every model of every layout is served, the shared layout is set against each model alone, and the memory the
layout took is what its processes hold at least."""

from __future__ import annotations

import pytest

from ailab import host
from ailab.contract import Context

pytestmark = [pytest.mark.gpu, pytest.mark.skipif(not host.gpus(), reason="no NVIDIA GPU on this host")]


def test_two_small_models_alone_and_side_by_side(tmp_path) -> None:
    from workloads.gpu.experiments.instances import InstancesParams, instance_layouts

    p = InstancesParams(
        models={"a": {"dim": 1024, "layers": 4, "batch": 32}, "b": {"dim": 256, "layers": 2, "batch": 1}},
        layouts=[["a"], ["b"], ["a", "b"]],
        seconds=1.0,
    )
    out = instance_layouts(Context("d18.e1", "cuda", True, tmp_path), p)
    per_model = next(t for t in out.tables if t.name == "per_model").rows
    assert [(r[0], r[1]) for r in per_model] == [("a x1", "a"), ("b x1", "b"), ("a x1 + b x1", "a"),
                                                  ("a x1 + b x1", "b")]  # fmt: skip
    for layout, model, instances, rps, ips, p50, p99, *vs in per_model:
        assert instances == 1 and rps > 0 and ips >= rps and 0 < p50 <= p99, (layout, model)
        assert all(isinstance(v, float) and v > 0 for v in vs), (layout, model, vs)  # every model has an alone run
    for layout, _instances, rps, taken, reserved, util in next(t for t in out.tables if t.name == "per_layout").rows:
        assert rps > 0 and reserved > 0 and taken >= reserved, (layout, taken, reserved)
        assert 0 <= util <= 100, (layout, util)
