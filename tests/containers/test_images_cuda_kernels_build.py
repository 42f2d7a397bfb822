"""The cuda-kernels image builds for real with podman: the CUDA 13.0 toolchain from PyPI wheels on the local Debian
base compiles cuda/, the runtime stage runs its binaries, and they are copied out to .lab/imagebin/ (ignored) for
the GPU machine (workloads/images/cuda_kernels_gpu_check.sh runs them next to the host build).

Opt-in: a cold build compiles all of cuda/ (several minutes on 2 cores, see docs/kernels.md); run it with
`make image-cuda-kernels` (sets AILAB_BUILD_CUDA_IMAGE=1). There is no GPU here: inside the container each binary
must get as far as its first CUDA call and report, as the harness does, a JSON error line."""

from __future__ import annotations

import json
import os

import pytest

from workloads.images import build, catalog, cuda_kernels

pytestmark = [
    pytest.mark.containers,
    pytest.mark.slow,
    pytest.mark.skipif(
        os.environ.get("AILAB_BUILD_CUDA_IMAGE") != "1",
        reason="cold build of all of cuda/ takes minutes: `make image-cuda-kernels` (AILAB_BUILD_CUDA_IMAGE=1)",
    ),
]


@pytest.fixture(scope="module")
def image(engine: str) -> build.BuildResult:
    return cuda_kernels.build_image(engine)


def test_image_is_tagged_labelled_and_runs_as_non_root(engine: str, image: build.BuildResult) -> None:
    assert image.ref == catalog.IMAGES["cuda-kernels"].ref
    p = build.run([engine, "image", "inspect", "--format", "{{json .Config}}", image.ref])
    config = json.loads(p.stdout)
    assert config["User"] == "10001:10001"
    assert config["Labels"]["org.opencontainers.image.title"] == "ailab-cuda-kernels"
    assert config["Labels"]["ai.infra-lab.builder-base"] == catalog.LOCAL_BASE


def test_runtime_holds_the_binaries_and_only_the_libraries_they_load(engine: str, image: build.BuildResult) -> None:
    script = (
        f"ls {cuda_kernels.BIN_DIR}; echo ---; ls {cuda_kernels.LIB_DIR}; echo ---; "
        f"for f in {cuda_kernels.BIN_DIR}/*; do ldd $f; done | grep -c 'not found'; echo ---; "
        "command -v nvcc pip3 g++ cmake || true"
    )
    p = build.run([engine, "run", "--rm", "--entrypoint", "sh", image.ref, "-c", script])
    assert p.returncode == 0, p.stderr
    bins, libs, not_found, tools = (s.split() for s in p.stdout.split("---"))
    assert set(bins) == {*cuda_kernels.BINARIES, cuda_kernels.LIBRARY}
    assert {"libcublas.so.13", "libcublasLt.so.13", "libcupti.so.13"} <= set(libs)
    assert not [x for x in libs if x.startswith(("libnvrtc", "libnvblas", "libnvperf", "libcudart_static"))]
    assert not_found == ["0"]  # every library each binary needs resolves inside the image
    assert tools == []  # no compiler, pip or cmake in the runtime stage


def test_binaries_run_to_their_first_cuda_call_without_a_gpu(engine: str, image: build.BuildResult) -> None:
    mem = build.run([engine, "run", "--rm", "--read-only", image.ref])  # CMD: bench_memory --quick --case ...
    gemm = build.run([engine, "run", "--rm", "--read-only", image.ref, "bench_gemm", "--quick"])
    for p in (mem, gemm):
        assert p.returncode == 1
        err = json.loads(p.stderr.strip().splitlines()[-1])  # the harness's checked-call error, as JSON
        assert set(err) >= {"error", "call"}
    assert gemm.stdout == "" and "cublasCreate" in gemm.stderr  # cuBLAS was loaded and called


def test_binaries_are_copied_out_small_enough_to_carry(engine: str, image: build.BuildResult) -> None:
    """To .lab/imagebin/ for the GPU machine (carried with the device call, whose limit is 64 MiB in all), with the
    digest of the cuda/ sources they were compiled from (the device script records the host build's next to it)."""
    files = cuda_kernels.copy_binaries(engine, image.ref)
    names = {f.name for f in files}
    assert names == {*cuda_kernels.BINARIES, cuda_kernels.LIBRARY, cuda_kernels.SOURCE_FILE}
    assert sum(f.stat().st_size for f in files) < 40 * 2**20
    staged = cuda_kernels.context.staging_root() / "context" / "cuda-kernels" / "src"
    digest = (cuda_kernels.imagebin_dir() / cuda_kernels.SOURCE_FILE).read_text().strip()
    assert digest == cuda_kernels.source_digest(staged)  # the sources this image compiled
