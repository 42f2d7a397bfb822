"""`lab images` bad input: unknown image or variant, a missing base image, no container engine — each a clear
message with the fix, exit code 2, before anything is built."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

LAB = [sys.executable, "-c", "from ailab.cli import main; main()"]


def lab(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*LAB, *args], capture_output=True, text=True, timeout=300, env=env, check=False)


def test_unknown_image_name_lists_the_allowed_ones() -> None:
    p = lab("images", "build", "inferense")
    assert p.returncode == 2
    assert "image 'inferense': unknown (allowed: inference, triton-models, exporter, cuda-kernels)" in p.stderr


def test_unknown_variant_names_the_allowed_ones() -> None:
    p = lab("images", "build", "inference", "--variant", "tiny")
    assert p.returncode == 2
    assert "variant 'tiny' of image inference: unknown (allowed: onnx)" in p.stderr


def test_bad_build_arg_is_refused() -> None:
    p = lab("images", "build", "inference", "--arg", "WITH_TORCH")
    assert p.returncode == 2
    assert "--arg 'WITH_TORCH': expected KEY=VALUE" in p.stderr


def test_no_container_engine_says_how_to_install_one(tmp_path) -> None:
    """PATH without podman/docker stands in for a host that has none (this one has podman)."""
    env = {**os.environ, "PATH": str(tmp_path)}
    p = lab("images", "build", "exporter", env=env)
    assert p.returncode == 2
    assert "neither podman nor docker is installed; install one: apt-get install -y podman runc" in p.stderr


def test_cuda_kernels_need_a_cuda_base_here() -> None:
    p = lab("images", "build", "cuda-kernels", "--no-cold")
    assert p.returncode == 2
    assert "needs a CUDA devel base with nvcc" in p.stderr
    assert "--base nvidia/cuda:" in p.stderr


@pytest.mark.containers
def test_missing_base_image_is_named_with_the_fix(engine: str) -> None:
    p = lab("images", "build", "exporter", "--base", "localhost/ailab-no-such-base:1", "--no-cold")
    assert p.returncode == 2
    assert "base image localhost/ailab-no-such-base:1: not present locally" in p.stderr
    assert "--base localhost/ailab-debian:bookworm" in p.stderr
