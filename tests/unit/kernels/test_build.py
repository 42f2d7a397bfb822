"""`cuda/` compiles here (nvcc, cuBLAS from the nvidia-cublas wheel); without a GPU the binaries fail loudly.

The GPU itself cannot exist on this machine: the last test checks that the harness reports the missing device
as a JSON error and a non-zero exit instead of printing results.
"""

from __future__ import annotations

import json
import os
import subprocess

import pytest

from workloads.kernels import build

pytestmark = pytest.mark.skipif(build.nvcc() is None, reason="nvcc not installed")


@pytest.fixture(scope="module")
def built() -> object:
    return build.build(jobs=max(2, os.cpu_count() or 2))


def test_every_binary_is_built(built) -> None:
    for name in build.BINARIES:
        exe = build.binary(name, built)
        assert exe.is_file() and os.access(exe, os.X_OK), name


def test_the_cupti_tracer_is_an_injectable_library(built) -> None:
    """The driver looks up InitializeInjection in CUDA_INJECTION64_PATH's library; without it nothing is traced."""
    lib = built / build.TRACER
    assert lib.is_file()
    syms = subprocess.run(["nm", "-D", "--defined-only", str(lib)], capture_output=True, text=True, check=True).stdout
    assert " T InitializeInjection" in syms


def test_harness_reports_a_missing_gpu_as_a_json_error(built) -> None:
    if os.path.exists("/dev/nvidia0"):
        pytest.skip("a GPU is present")
    proc = subprocess.run(
        [str(build.binary("bench_memory", built)), "--quick"], capture_output=True, text=True, timeout=60, check=False
    )
    assert proc.returncode == 1
    err = json.loads(proc.stderr.strip().splitlines()[-1])
    assert err["call"].startswith("cuda") and err["error"]
    assert proc.stdout == ""  # nothing measured, nothing printed
