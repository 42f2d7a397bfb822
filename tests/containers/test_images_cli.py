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


def test_cuda_kernels_without_a_local_base_in_the_catalogue_names_both_bases() -> None:
    p = lab("images", "build", "cuda-kernels", "--no-cold")
    assert p.returncode == 2
    assert "image cuda-kernels: the catalogue gives it no local base" in p.stderr
    assert "--base localhost/ailab-debian:bookworm" in p.stderr and "--base nvidia/cuda:" in p.stderr


def test_cuda_kernels_build_goes_through_the_images_own_build_path(monkeypatch: pytest.MonkeyPatch) -> None:
    """`lab images build cuda-kernels` calls workloads.images.cuda_kernels.build_image (the path of
    `python -m workloads.images.cuda_kernels`), with the base and --arg given; the other images the generic builder.
    The builds themselves are faked (a cold build of cuda/ takes ten minutes here; the real one is
    test_images_cuda_kernels_build.py), and so is the engine lookup."""
    from typer.testing import CliRunner

    from ailab.cli import app
    from workloads.images import build, catalog, cuda_kernels

    calls = []

    def fake(kind: str):
        def run(*a, **k):
            calls.append((kind, a, k))
            return build.BuildResult(f"localhost/x-{kind}", 1.0, 1, [], [], "")

        return run

    monkeypatch.setattr(build, "engine", lambda: "podman")
    monkeypatch.setattr(cuda_kernels, "build_image", fake("cuda_kernels"))
    monkeypatch.setattr(build, "build_image", fake("generic"))
    base = catalog.LOCAL_BASE
    r = CliRunner().invoke(app, ["images", "build", "cuda-kernels", "--base", base, "--arg", "RUNTIME_IMAGE=r:1"])
    assert r.exit_code == 0, r.output
    assert [(kind, a, k) for kind, a, k in calls] == [
        ("cuda_kernels", ("podman", base), {"no_cache": no_cache, "args": {"RUNTIME_IMAGE": "r:1"}})
        for no_cache in (True, False)
    ]
    calls.clear()
    r = CliRunner().invoke(app, ["images", "build", "exporter", "--no-cold"])
    assert r.exit_code == 0, r.output
    assert [kind for kind, _, _ in calls] == ["generic"]


@pytest.mark.containers
def test_missing_base_image_is_named_with_the_fix(engine: str) -> None:
    p = lab("images", "build", "exporter", "--base", "localhost/ailab-no-such-base:1", "--no-cold")
    assert p.returncode == 2
    assert "base image localhost/ailab-no-such-base:1: not present locally" in p.stderr
    assert "--base localhost/ailab-debian:bookworm" in p.stderr
