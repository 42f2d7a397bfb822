"""The cuda-kernels image built for real on a CPU host: the CUDA toolchain from PyPI wheels on the local Debian base.

`build_image()` stages the context (cuda/ sources, the pinned nvidia-* wheels of cuda-kernels/requirements.txt
hardlinked from the cached wheelhouse under .lab/images/wheelhouse, so repeated builds download nothing) and builds
cuda-kernels/Dockerfile with podman on localhost/ailab-debian:bookworm (built with mmdebstrap when missing).
`copy_binaries()` copies the image's stripped binaries out (to .lab/imagebin/ by default) so they can be carried to
the GPU machine and run next to the host build there (workloads/images/cuda_kernels_gpu_check.sh runs both,
workloads/images/compare_builds.py compares them).

Usage: python -m workloads.images.cuda_kernels [--out .lab/imagebin] [--no-cache] [--git HEAD] [--record build.json]
(--record appends the build's wall time, image size, rebuilt steps and the host's load to a JSON list, which
compare_builds renders into docs/kernels.md.)
"""

from __future__ import annotations

import argparse
import io
import json
import os
import shutil
import subprocess
import sys
import tarfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from ailab.contract import paths
from workloads.images import build, catalog, context
from workloads.images.compare_builds import SOURCE_FILE, source_digest  # one definition for the image and the GPU check

NAME = "cuda-kernels"
DOCKERFILE = context.IMAGES_DIR / NAME / "Dockerfile"
REQUIREMENTS = context.IMAGES_DIR / NAME / "requirements.txt"
BINARIES = ("bench_memory", "bench_gemm", "bench_streams", "bench_graphs", "oob_vector_add", "bench_conv")
LIBRARY = "libailab_trace.so"  # the CUPTI tracer, a shared library next to the binaries
BIN_DIR = "/opt/ailab/bin"
LIB_DIR = "/opt/ailab/lib"


def imagebin_dir() -> Path:
    """Where the image's binaries are copied out (.lab/imagebin, ignored by git; carried to the GPU machine)."""
    return paths.state_dir() / "imagebin"


def runtime_base(base: str) -> str:
    """RUNTIME_IMAGE for a build on `base`: the catalogue's runtime image for its CUDA (devel) base, else the base
    itself (the local Debian base: the binaries run on the same glibc they were linked against)."""
    spec = catalog.image(NAME)
    return spec.build_args.get("RUNTIME_IMAGE", base) if base == spec.gpu_base else base


def build_image(
    eng: str | None = None,
    base: str | None = None,
    runtime: str | None = None,
    no_cache: bool = False,
    timeout: float = 3600,
    git_ref: str | None = None,
    args: dict[str, str] | None = None,
) -> build.BuildResult:
    """Build the cuda-kernels image on `base` (default: the local Debian base; the toolchain then comes from the
    wheels) with the runtime stage on `runtime` (default: runtime_base(base)), tagged as the catalogue says. `git_ref`
    (e.g. HEAD): compile cuda/ as committed there instead of the working tree's (the GPU machine builds HEAD).
    `args`: more build arguments (`lab images build --arg`; RUNTIME_IMAGE there is the runtime stage's base).
    The one build path of this image: `python -m workloads.images.cuda_kernels`, `lab images build cuda-kernels`
    and the container test all come here."""
    spec = catalog.image(NAME)
    eng = eng or build.engine()
    base = base or catalog.LOCAL_BASE
    extra = dict(args or {})
    runtime = extra.pop("RUNTIME_IMAGE", None) or runtime or runtime_base(base)
    build.ensure_base(eng, base)
    if runtime != base:
        build.ensure_base(eng, runtime)
    # python "3.11": the wheels are py3-none, any version fits; the wheelhouse directory is the shared one
    ctx = context.stage(spec, {}, python=build.base_python(eng, base))
    if git_ref is not None:
        stage_committed_cuda(ctx / "src", git_ref)
    build_args = {
        **extra,
        "BASE_IMAGE": base,
        "RUNTIME_IMAGE": runtime,
        "VERSION": catalog.TAG,
        "REVISION": build.git_revision(),
        "CUDA_SOURCE": source_digest(ctx / "src"),  # a label: which cuda/ sources the binaries were compiled from
    }
    return build.build(eng, ctx, ctx / spec.dockerfile, spec.ref, build_args, no_cache=no_cache, timeout=timeout)


def stage_committed_cuda(dest: Path, git_ref: str) -> None:
    """Replace dest/cuda with cuda/ as committed at `git_ref` (git archive); ImagesError naming the ref otherwise."""
    p = subprocess.run(
        ["git", "-C", str(context.REPO_ROOT), "archive", "--format=tar", git_ref, "cuda"],
        capture_output=True,
        check=False,
    )
    if p.returncode != 0:
        raise build.ImagesError(f"git ref {git_ref!r}: `git archive {git_ref} cuda` failed: {p.stderr.decode()[-300:]}")
    shutil.rmtree(dest / "cuda", ignore_errors=True)
    with tarfile.open(fileobj=io.BytesIO(p.stdout)) as tar:
        tar.extractall(dest, filter="data")


def copy_binaries(eng: str, ref: str, dest: Path | None = None) -> list[Path]:
    """Copy the image's binaries (and the tracer library) out of `ref` into `dest`, replacing older copies.

    The runtime libraries (cuBLAS, ~600 MB with cuBLASLt) stay in the image: on the GPU machine the binaries load the
    ones that machine has. Raises ImagesError naming what is missing."""
    dest = dest or imagebin_dir()
    name = f"ailab-copy-{int(time.time() * 1000)}"
    created = build.run([eng, "create", "--name", name, ref])
    if created.returncode != 0:
        raise build.ImagesError(f"image {ref}: `{eng} create` failed: {created.stderr.strip()[-400:]}")
    staging = dest.with_name(dest.name + ".new")
    if staging.exists():
        shutil.rmtree(staging)
    staging.mkdir(parents=True)
    try:
        p = build.run([eng, "cp", f"{name}:{BIN_DIR}/.", str(staging)])
        if p.returncode != 0:
            raise build.ImagesError(f"image {ref}: `{eng} cp {BIN_DIR}` failed: {p.stderr.strip()[-400:]}")
    finally:
        build.run([eng, "rm", "-f", name])
    missing = [b for b in (*BINARIES, LIBRARY) if not (staging / b).is_file()]
    if missing:
        shutil.rmtree(staging)
        raise build.ImagesError(f"image {ref}: {BIN_DIR} lacks {', '.join(missing)}")
    label = build.run([eng, "image", "inspect", "--format", '{{index .Config.Labels "ai.infra-lab.cuda-source"}}', ref])
    (staging / SOURCE_FILE).write_text(label.stdout.strip() + "\n")
    if dest.exists():
        shutil.rmtree(dest)
    staging.rename(dest)
    return sorted(dest.iterdir())


def record(path: Path, r: build.BuildResult, no_cache: bool, load_before: tuple[float, float, float]) -> dict[str, Any]:
    """Append this build's measurements to the JSON list at `path` (created when missing); returns the entry."""
    entry = {
        "date": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "revision": build.git_revision(),
        "image": r.ref,
        "cache": "none (--no-cache)" if no_cache else "layer cache",
        "build_s": round(r.seconds, 1),
        "size_bytes": r.size_bytes,
        "steps_rebuilt": len(r.rebuilt),
        "cpus": os.cpu_count(),
        "load_1m_before": round(load_before[0], 2),
        "load_1m_after": round(os.getloadavg()[0], 2),
    }
    rows = json.loads(path.read_text()) if path.exists() else []
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps([*rows, entry], indent=1) + "\n")
    return entry


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=None, help="where to copy the binaries (default .lab/imagebin)")
    ap.add_argument("--base", default=None, help=f"BASE_IMAGE (default {catalog.LOCAL_BASE})")
    ap.add_argument("--runtime", default=None, help="RUNTIME_IMAGE (default: runtime_base(base))")
    ap.add_argument("--no-cache", action="store_true", help="rebuild every layer")
    ap.add_argument("--git", default=None, metavar="REF", help="compile cuda/ as committed at REF (e.g. HEAD)")
    ap.add_argument("--record", type=Path, default=None, help="append the build's measurements to this JSON list")
    a = ap.parse_args(argv)
    load_before = os.getloadavg()
    try:
        eng = build.engine()
        r = build_image(eng, a.base, a.runtime, no_cache=a.no_cache, git_ref=a.git)
        files = copy_binaries(eng, r.ref, a.out)
    except (build.ImagesError, context.ContextError, KeyError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    summary = {
        "image": r.ref,
        "build_s": round(r.seconds, 1),
        "size_bytes": r.size_bytes,
        "steps_rebuilt": len(r.rebuilt),
        "copied": {f.name: f.stat().st_size for f in files},
    }
    if a.record:
        summary["recorded"] = record(a.record, r, a.no_cache, load_before)
    print(json.dumps(summary, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
