"""Configure and build `cuda/` with CMake + Ninja into one cached build directory (build/cuda)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

from ailab.contract.paths import REPO_ROOT

SOURCE = REPO_ROOT / "cuda"
BUILD = REPO_ROOT / "build" / "cuda"
BINARIES = ("bench_memory", "bench_gemm", "bench_streams", "bench_graphs", "oob_vector_add", "bench_conv")


TRACER = "libailab_trace.so"  # CUPTI activity tracer (cuda/tools/trace_inject.cpp), injected by the CUDA driver


class BuildError(RuntimeError):
    """CMake or the compiler failed; the message carries the tail of its output."""


def wheel_root(header: str) -> Path | None:
    """nvidia/cu13 of a CUDA 13 PyPI wheel (include/ + lib/) on sys.path that holds `header`: nvidia-cublas and
    nvidia-cuda-cupti, used where the CUDA toolkit lacks cuBLAS or CUPTI (this CPU machine)."""
    for entry in sys.path:
        cand = Path(entry) / "nvidia" / "cu13"
        if (cand / "include" / header).exists():
            return cand
    return None


def cublas_root() -> Path | None:
    return wheel_root("cublas_v2.h")


def cupti_root() -> Path | None:
    return wheel_root("cupti_activity.h")


def nvcc() -> str | None:
    return shutil.which("nvcc") or next((str(p) for p in (Path("/usr/local/cuda/bin/nvcc"),) if p.exists()), None)


def build(build_dir: Path = BUILD, jobs: int | None = None) -> Path:
    """Build every binary of cuda/ (incremental: Ninja rebuilds only what changed); returns the build dir."""
    if nvcc() is None:
        raise BuildError("nvcc not found (install the CUDA toolkit or put nvcc on PATH)")
    build_dir.mkdir(parents=True, exist_ok=True)
    env = {**os.environ}
    if nvcc() and not shutil.which("nvcc"):
        env["PATH"] = f"{Path(nvcc()).parent}:{env['PATH']}"
    cfg = ["cmake", "-S", str(SOURCE), "-B", str(build_dir), "-G", "Ninja", "-DCMAKE_BUILD_TYPE=Release"]
    if root := cublas_root():
        cfg.append(f"-DCUBLAS_ROOT={root}")
    if root := cupti_root():
        cfg.append(f"-DCUPTI_ROOT={root}")
    jobs = jobs or os.cpu_count() or 2
    for cmd in (cfg, ["cmake", "--build", str(build_dir), "-j", str(jobs)]):
        proc = subprocess.run(cmd, capture_output=True, text=True, env=env, check=False)
        if proc.returncode != 0:
            raise BuildError(f"{' '.join(cmd[:3])} failed:\n{(proc.stdout + proc.stderr)[-4000:]}")
    return build_dir


def binary(name: str, build_dir: Path = BUILD) -> Path:
    """Path of a built benchmark binary; the name must be one of BINARIES."""
    if name not in BINARIES:
        raise ValueError(f"binary {name!r}: allowed values are {', '.join(BINARIES)}")
    return build_dir / name
