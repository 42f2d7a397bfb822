"""The workload images really build with podman: cache order, non-root user, OCI labels, the other images."""

from __future__ import annotations

import json
import shutil

import pytest

from workloads.images import build, catalog, context

pytestmark = pytest.mark.containers


def test_inference_image_runs_as_non_root_with_oci_labels(engine: str, inference_image: build.BuildResult) -> None:
    p = build.run([engine, "image", "inspect", "--format", "{{json .Config}}", inference_image.ref])
    config = json.loads(p.stdout)
    assert config["User"] == "10001:10001"
    labels = config["Labels"]
    assert labels["org.opencontainers.image.title"] == "ailab-inference"
    assert labels["org.opencontainers.image.version"] == catalog.TAG
    assert labels["ai.infra-lab.with-torch"] == "0"  # the onnx variant
    assert inference_image.ref == catalog.IMAGES["inference"].ref_of("onnx")


def test_layer_cache_reruns_only_the_source_layer_after_an_edit(
    engine: str, inference_image: build.BuildResult
) -> None:
    """Dependencies sit before the source: unchanged context -> no RUN/COPY step runs; a source edit -> only the
    source COPY runs. Uses the context the fixture staged, so edits elsewhere in the tree cannot interfere."""
    spec = catalog.IMAGES["inference"]
    ctx = context.staging_root() / "context" / "inference"
    args = {"WITH_TORCH": "0", "BASE_IMAGE": catalog.LOCAL_BASE, "VERSION": catalog.TAG, "REVISION": "test"}

    def rerun(r: build.BuildResult) -> list[str]:
        return [
            s.instruction.split()[0] + " " + s.instruction.split()[1]
            for s in r.rebuilt
            if s.instruction.startswith(("RUN", "COPY"))
        ]

    ref = "localhost/ailab-test-inference:cache"
    same = build.build(engine, ctx, ctx / spec.dockerfile, ref, args)
    assert same.steps, "no build steps parsed from the engine's output"
    assert rerun(same) == []
    edited = ctx / "src" / "workloads" / "images" / "entrypoint.py"
    edited.write_text(edited.read_text() + "\n# edited by the cache test\n")
    try:
        after = build.build(engine, ctx, ctx / spec.dockerfile, ref, args)
    finally:
        edited.write_text(edited.read_text().replace("\n# edited by the cache test\n", ""))
        build.remove(engine, ref)
    assert rerun(after) == ["COPY src/workloads"]
    assert [la.size_bytes for la in after.layers][:3] == [la.size_bytes for la in same.layers][:3]


def test_runtime_stage_carries_no_pip_and_no_wheelhouse(engine: str, inference_image: build.BuildResult) -> None:
    p = build.run(
        [
            engine,
            "run",
            "--rm",
            "--entrypoint",
            "sh",
            inference_image.ref,
            "-c",
            "ls /opt/venv/bin; test -e /wheels && echo WHEELS; echo uid=$(id -u)",
        ]
    )
    assert p.returncode == 0, p.stderr
    assert "pip" not in p.stdout.split()
    assert "WHEELS" not in p.stdout
    assert "uid=10001" in p.stdout


def test_info_reports_versions_and_no_cuda_here(engine: str, inference_image: build.BuildResult) -> None:
    p = build.run([engine, "run", "--rm", "--read-only", inference_image.ref, "info"])
    assert p.returncode == 0, p.stderr
    info = json.loads(p.stdout)
    assert info["onnxruntime"] == "1.32.0"
    assert info["torch"] is None  # the onnx variant has no torch
    assert info["uid"] == 10001


def test_triton_models_init_container_copies_a_week(engine: str, tmp_path) -> None:
    r = build.build_image("triton-models", eng=engine)
    target = tmp_path / "models"
    target.mkdir()
    target.chmod(0o777)
    p = build.run([engine, "run", "--rm", "--read-only", "-e", "WEEK=03", "-v", f"{target}:/target", r.ref])
    assert p.returncode == 0, p.stderr
    assert (target / "mlp" / "config.pbtxt").is_file()
    assert (target / "mlp" / "1" / "model.onnx").stat().st_size > 0
    bad = build.run([engine, "run", "--rm", "-e", "WEEK=99", r.ref])
    assert bad.returncode == 2
    assert "WEEK 99: no repository; allowed: 01" in bad.stderr


def test_exporter_image_serves_metrics(engine: str) -> None:
    r = build.build_image("exporter", eng=engine)
    name = "ailab-test-exporter"
    build.run([engine, "rm", "-f", name])
    started = build.run([engine, "run", "-d", "--name", name, "--read-only", r.ref])
    assert started.returncode == 0, started.stderr
    try:
        scrape = (
            "import time, urllib.request\n"
            "for _ in range(50):\n"
            "    try:\n"
            "        print(urllib.request.urlopen('http://127.0.0.1:9108/metrics', timeout=2).read().decode()); break\n"
            "    except OSError:\n"
            "        time.sleep(0.2)\n"
        )
        p = build.run([engine, "exec", name, "python3", "-c", scrape])
    finally:
        build.run([engine, "rm", "-f", "-t", "2", name])
    assert p.returncode == 0, p.stderr
    assert "lab_exporter_info" in p.stdout
    assert "lab_host_memory_total_bytes" in p.stdout


def test_cuda_kernels_image_refuses_a_base_without_nvcc_and_without_toolchain_wheels(
    engine: str, inference_image: build.BuildResult, tmp_path
) -> None:
    """The default build assembles nvcc from PyPI wheels (tests/containers/test_images_cuda_kernels_build.py, opt-in);
    a context without them on a base without nvcc fails at the builder's first step, before apt or the compile."""
    ctx = tmp_path / "ctx"
    shutil.copytree(context.IMAGES_DIR / "cuda-kernels", ctx / "cuda-kernels")
    (ctx / "wheels").mkdir()
    (ctx / "src" / "cuda").mkdir(parents=True)
    ref = "localhost/ailab-test-cuda-kernels:refused"
    with pytest.raises(build.ImagesError, match="has no nvcc and the context's wheels/ has no nvidia-cuda-nvcc wheel"):
        build.build(
            engine,
            ctx,
            ctx / "cuda-kernels" / "Dockerfile",
            ref,
            {"BASE_IMAGE": catalog.LOCAL_BASE},
            no_cache=True,
            target="builder",
            timeout=300,
        )
