"""The TensorRT path without TensorRT: profiles, build settings, calibration sampling, trtexec/Polygraphy lines."""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest

from workloads.engines.calibration import CalibrationError, batches, calibration_set, sample_indices
from workloads.engines.profiles import ProfileError, ShapeProfile, batch_profile, bucket_for, pick_profile
from workloads.engines.trt import (
    BuildConfig,
    BuildConfigError,
    TensorRTMissingError,
    check_precision,
    polygraphy_commands,
    require_tensorrt,
    trtexec_command,
)


def test_profile_min_above_opt_is_refused_naming_the_field():
    with pytest.raises(ProfileError, match=r"field min = \(16, 3, 224, 224\) exceeds opt .* dim 0"):
        ShapeProfile("input", (16, 3, 224, 224), (8, 3, 224, 224), (64, 3, 224, 224))


def test_profile_opt_above_max_and_rank_mismatch_and_zero_dims():
    with pytest.raises(ProfileError, match="field opt"):
        batch_profile("input", (3, 224, 224), 1, 128, 64)
    with pytest.raises(ProfileError, match="different ranks"):
        ShapeProfile("input", (1, 3), (8, 3, 1), (64, 3))
    with pytest.raises(ProfileError, match=r"field min = .*>= 1"):
        ShapeProfile("input", (0, 3), (8, 3), (64, 3))


def test_profile_admits_and_selection_prefers_the_closest_opt():
    small = batch_profile("input", (3, 224, 224), 1, 1, 8, name="small")
    big = batch_profile("input", (3, 224, 224), 8, 32, 64, name="big")
    assert small.admits((4, 3, 224, 224)) and not small.admits((9, 3, 224, 224))
    assert pick_profile([small, big], (8, 3, 224, 224)).name == "small"  # both admit 8; opt 1 is nearer than 32
    assert pick_profile([small, big], (30, 3, 224, 224)).name == "big"
    with pytest.raises(ProfileError, match="outside every profile"):
        pick_profile([small, big], (65, 3, 224, 224))


def test_bucket_for_pads_up_and_refuses_too_large():
    assert [bucket_for(b, [1, 16, 64]) for b in (1, 2, 16, 17, 64)] == [1, 16, 16, 64, 64]
    with pytest.raises(ProfileError, match="field batch = 65"):
        bucket_for(65, [1, 16, 64])


def test_fp8_below_sm89_is_refused_and_allowed_on_hopper():
    with pytest.raises(BuildConfigError, match=r"field precision = 'fp8': not supported on sm_80; needs sm_89"):
        check_precision("fp8", (8, 0))
    assert check_precision("fp8", (9, 0)) == "fp8"
    assert check_precision("fp16", (7, 5)) == "fp16"
    with pytest.raises(BuildConfigError, match="allowed fp32"):
        check_precision("int4", (9, 0))


def test_build_config_rejects_bad_fields():
    with pytest.raises(BuildConfigError, match="field workspace_mib = 0"):
        BuildConfig(workspace_mib=0)
    with pytest.raises(BuildConfigError, match="field tactic_sources"):
        BuildConfig(tactic_sources=("CUBLAS", "MAGIC"))
    with pytest.raises(ValueError, match="field calibrator = 'kl'"):
        BuildConfig(calibrator="kl")
    p = batch_profile("input", (3, 224, 224), 1, 8, 64)
    with pytest.raises(BuildConfigError, match=r"names .* repeat"):
        BuildConfig(profiles=(p, p))


def test_trtexec_line_spells_out_the_settings():
    prof = batch_profile("input", (3, 224, 224), 1, 8, 64)
    cfg = BuildConfig(
        precision="int8",
        workspace_mib=64,
        tactic_sources=("CUBLAS", "-CUDNN"),
        timing_cache="t.cache",
        profiles=(prof,),
        calibration_cache="calib.cache",
    )
    cmd = trtexec_command(cfg, "m.onnx", "m.engine")
    assert cmd[:3] == ["trtexec", "--onnx=m.onnx", "--saveEngine=m.engine"]
    for flag in (
        "--memPoolSize=workspace:64M",
        "--int8",
        "--calib=calib.cache",
        "--tacticSources=+CUBLAS,-CUDNN",
        "--timingCacheFile=t.cache",
        "--minShapes=input:1x3x224x224",
        "--optShapes=input:8x3x224x224",
        "--maxShapes=input:64x3x224x224",
    ):
        assert flag in cmd
    assert "--noTF32" in trtexec_command(BuildConfig(precision="fp32"), "m.onnx", "m.engine")


def test_polygraphy_builds_then_compares_with_onnxruntime():
    build, compare = polygraphy_commands(BuildConfig(precision="fp16", workspace_mib=256), "m.onnx", "m.engine")
    assert build[:4] == ["polygraphy", "convert", "m.onnx", "-o"] and "--fp16" in build
    assert "--trt" in compare and "--onnxrt" in compare


@pytest.mark.skipif(importlib.util.find_spec("tensorrt") is not None, reason="TensorRT is installed here")
def test_missing_tensorrt_says_what_is_needed():
    with pytest.raises(TensorRTMissingError, match="needs TensorRT"):
        require_tensorrt()


def test_calibration_set_larger_than_the_data_is_refused():
    with pytest.raises(CalibrationError, match="field calibration_size = 5000: larger than the 450 samples"):
        sample_indices(450, 5000)
    with pytest.raises(CalibrationError, match="field calibration_size = 0"):
        sample_indices(450, 0)


def test_calibration_sampling_is_distinct_reproducible_and_batched():
    x = np.arange(1000, dtype=np.float32).reshape(500, 2)
    a, b = calibration_set(x, 50, seed=3), calibration_set(x, 50, seed=3)
    assert np.array_equal(a, b) and len({tuple(r) for r in a}) == 50
    assert not np.array_equal(a, calibration_set(x, 50, seed=4))
    sizes = [len(c) for c in batches(a, 16)]
    assert sizes == [16, 16, 16, 2]


@pytest.mark.skipif(importlib.util.find_spec("tensorrt") is not None, reason="TensorRT is installed here")
def test_tensorrt_rows_need_tensorrt_and_runners_say_so(tmp_path):
    from ailab.contract import Context
    from workloads.engines.experiments.precision import PrecisionParams, precision_study
    from workloads.engines.trt_bench import NEEDS_TENSORRT, tensorrt_rows

    x = np.zeros((4, 64), dtype=np.float32)
    with pytest.raises(TensorRTMissingError):
        tensorrt_rows(tmp_path / "m.onnx", tmp_path, ["fp16"], x, x, np.zeros(4, dtype=np.int64), 4, 2)
    ctx = Context(experiment_id="d04.e1", device="cpu", quick=True, workdir=tmp_path)
    out = precision_study(ctx, PrecisionParams(precisions=["fp16"], width=16, epochs=1, batch=8, resnet=False, iters=2))
    assert NEEDS_TENSORRT in out.notes
