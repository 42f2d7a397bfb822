"""The cuda-kernels image builds for real with podman: the CUDA 13.0 toolchain from PyPI wheels on the local Debian
base compiles cuda/, the runtime stage runs its binaries, and they are copied out to .lab/imagebin/ (ignored) for
the GPU machine (.coord/device-cmds-image.sh runs them next to the host build).

Opt-in: a cold build compiles all of cuda/ (several minutes on 2 cores, see docs/kernels.md); run it with
`make image-cuda-kernels` (sets AILAB_BUILD_CUDA_IMAGE=1). There is no GPU here: inside the container each binary
must get as far as its first CUDA call and report, as the harness does, a JSON error line."""

from __future__ import annotations

import json
import os
import shutil
import subprocess

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


def test_binaries_copied_out_match_the_host_builds_device_code(engine: str, image: build.BuildResult) -> None:
    """Copied to .lab/imagebin/ for the GPU machine, small enough to carry; where the host has cuobjdump and a host
    build (build/cuda), the SASS of bench_memory (nvcc 13.0 both) is the same instruction for instruction."""
    files = cuda_kernels.copy_binaries(engine, image.ref)
    names = {f.name for f in files}
    assert names == {*cuda_kernels.BINARIES, cuda_kernels.LIBRARY}
    assert sum(f.stat().st_size for f in files) < 40 * 2**20
    host = cuda_kernels.imagebin_dir().parents[1] / "build" / "cuda" / "bench_memory"
    cuobjdump = shutil.which("cuobjdump") or "/usr/local/cuda/bin/cuobjdump"
    if not (host.exists() and os.path.exists(cuobjdump)):
        pytest.skip("no host build or cuobjdump to compare the SASS with")
    sources = [p for p in (host.parents[2] / "cuda").rglob("*") if p.suffix in {".cu", ".cuh", ".txt"}]
    if max(p.stat().st_mtime for p in sources) > host.stat().st_mtime:
        pytest.skip(f"{host} is older than cuda/'s sources: rebuild it (make cuda) to compare the SASS")

    def sass(path) -> list[str]:
        out = subprocess.run([cuobjdump, "-sass", str(path)], capture_output=True, text=True, check=True).stdout
        return [line.split("*/", 1)[-1].strip() for line in out.splitlines() if line.strip().startswith("/*")]

    ours, theirs = sass(cuda_kernels.imagebin_dir() / "bench_memory"), sass(host)
    assert len(ours) > 1000
    assert ours == theirs
