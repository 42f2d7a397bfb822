"""On a GPU host: model instances sharing GPU 0 as d07.e3/d18.e1/d51.e2-e4 run them (real worker processes, real
NVML): every model of every layout is served, the shared layout is set against each model alone, and the memory the
layout took is what its processes hold at least; d38.e3's two placements both answer; d34.e4's memory grows by a
version's weights per version and falls back once one is unloaded and the cache emptied; a short d49.e4 soak holds
its memory and fails no request."""

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


def test_preprocessing_on_either_side_answers_and_the_gpu_copy_is_smaller(tmp_path) -> None:
    from workloads.gpu.experiments.preprocess import PrepParams, prep_placement

    out = prep_placement(Context("d38.e3", "cuda", True, tmp_path), PrepParams(batches=[4], seconds=0.5))
    (cpu, gpu) = out.tables[0].rows
    assert (cpu[1], gpu[1]) == ("CPU", "GPU")
    assert cpu[2] > 0 and gpu[2] > 0 and gpu[6] * 2 == cpu[6]  # uint8 copied instead of FP16
    assert gpu[7] == cpu[7] and gpu[7] > 0  # the ratio, on both rows


def test_each_version_adds_its_weights_and_unloading_gives_them_back(tmp_path) -> None:
    from workloads.gpu.experiments.versions import VersionsParams, versions_memory

    p = VersionsParams(model={"dim": 2048, "layers": 4, "batch": 8}, versions=2)
    out = versions_memory(Context("d34.e4", "cuda", True, tmp_path), p)
    v1, v2, unloaded, emptied = out.tables[0].rows
    weights = v1[6]
    assert weights == 32.0  # 4 x 2048 x 2048 FP16 (+ biases, under 0.1 MiB)
    assert v2[2] - v1[2] == pytest.approx(weights, abs=1.0)
    assert v2[2] - unloaded[2] == pytest.approx(weights, abs=1.0) and unloaded[3] == v2[3]  # back in the cache
    assert emptied[3] < unloaded[3]


def test_a_short_soak_on_the_gpu_keeps_its_memory_and_passes(tmp_path) -> None:
    from workloads.gpu.experiments.soak import GpuSoakParams, gpu_soak

    p = GpuSoakParams(model={"dim": 1024, "layers": 4, "batch": 16}, duration_s=12, window_s=2, max_p99_drift=100)
    out = gpu_soak(Context("d49.e4", "cuda", True, tmp_path), p)
    verdict = {r[0]: r[3] for r in out.tables[0].rows}
    assert verdict["requests"] == verdict["error rate (failed / sent)"] == "PASS", verdict
    assert verdict["PyTorch reserved growth, MiB"] == "PASS", verdict  # the same tensors every request
    windows = out.tables[1].rows
    assert len(windows) == 6 and all(w[1] > 0 and w[2] == 0 for w in windows)
    assert out.series[1].lines["GPU memory in use (NVML)"], "NVML was read during the run"
