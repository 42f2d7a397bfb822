"""Digits split without leakage; compiler-job environments; shape buckets' padding on the CPU (eager stand-in)."""

from __future__ import annotations

import numpy as np
import pytest

from workloads.engines.compile_jobs import cache_env, run_job, workspace_env
from workloads.engines.data import digits


def test_digits_augmented_split_is_large_enough_for_5000_and_keeps_test_apart():
    d = digits()
    assert len(d.x_train) >= 5000 * 2 and len(d.x_test) == 450
    assert d.x_train.shape[1] == d.x_test.shape[1] == 64
    assert d.x_train.min() >= 0.0 and d.x_train.max() <= 1.0
    assert np.bincount(d.y_test, minlength=10).min() >= 44  # a quarter of every class held out


def test_workspace_env_caps_both_cublas_handles():
    env = workspace_env(64)
    assert env == {"CUBLAS_WORKSPACE_CONFIG": ":65536:1", "CUBLASLT_WORKSPACE_SIZE": "65536"}
    with pytest.raises(ValueError, match="field workspace_mib = 0"):
        workspace_env(0)
    assert cache_env(__import__("pathlib").Path("/c"))["TORCHINDUCTOR_CACHE_DIR"] == "/c/inductor"


def test_workspace_job_runs_in_a_fresh_process():
    r = run_job({"kind": "workspace", "device": "cpu", "quick": True, "iters": 3, "env": workspace_env(4)})
    assert r["p50_ms"] > 0 and any("addmm" in k or "linear" in k for k in r["kernels"])
