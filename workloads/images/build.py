"""Build container images with podman (or docker): base images, timed builds, which steps hit the cache, layer sizes.

Used by `lab images build`, `make images`, the d01 experiments and the tests.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

from workloads.images import catalog, context

# Packages of the local base image (localhost/ailab-debian:bookworm): python3 3.11 like the host venv, venv for
# the builder stages' virtual environments, CA certificates for anything speaking TLS at run time.
LOCAL_BASE_PACKAGES = "python3,python3-venv,ca-certificates"
BASE_SCRIPT = context.REPO_ROOT / "scripts" / "build-base-image.sh"


class ImagesError(RuntimeError):
    """A build cannot start or failed; the message names the input and says how to fix it."""


@dataclass(frozen=True)
class Step:
    stage: int  # 1-based build stage (multi-stage builds), 1 for single-stage
    number: int  # step number within the stage
    instruction: str  # e.g. "RUN apt-get install -y curl"
    cached: bool  # True when the engine reused a cached layer


@dataclass(frozen=True)
class Layer:
    size_bytes: int
    created_by: str


@dataclass
class BuildResult:
    """One timed build: the image, its wall time, size, steps (cached or rebuilt) and layers."""

    ref: str
    seconds: float  # wall-clock build time, s
    size_bytes: int
    steps: list[Step] = field(default_factory=list)
    layers: list[Layer] = field(default_factory=list)
    log: str = ""

    @property
    def rebuilt(self) -> list[Step]:
        return [s for s in self.steps if not s.cached and not s.instruction.startswith(("FROM", "ARG"))]


def engine() -> str:
    """'podman' or 'docker' that answers `info`; ImagesError with how to install one otherwise."""
    for name in ("podman", "docker"):
        if shutil.which(name):
            p = subprocess.run([name, "info"], capture_output=True, text=True, timeout=60, check=False)
            if p.returncode == 0:
                return name
            last = (p.stderr.strip().splitlines() or ["no output"])[-1]
            raise ImagesError(
                f"container engine {name}: `{name} info` failed ({last}); run scripts/setup-system.sh "
                "(writes /etc/containers/containers.conf for this kind of sandbox)"
            )
    raise ImagesError(
        "container engine: neither podman nor docker is installed; "
        "install one: apt-get install -y podman runc (or run `make setup`)"
    )


def run(cmd: list[str], timeout: float = 600, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    """Run an engine command, capturing text output (never raises on a non-zero exit)."""
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=False, cwd=cwd)


def exists(eng: str, ref: str) -> bool:
    if eng == "podman":
        return run([eng, "image", "exists", ref]).returncode == 0
    return run([eng, "image", "inspect", ref]).returncode == 0


def ensure_base(eng: str, base: str) -> str:
    """Make sure `base` is available: build the local Debian base when it is missing, pull anything else."""
    if exists(eng, base):
        return base
    if base == catalog.LOCAL_BASE:
        if eng != "podman" or not shutil.which("mmdebstrap"):
            raise ImagesError(
                f"base image {base}: missing and it is built with podman + mmdebstrap "
                "(apt-get install -y podman mmdebstrap), or pass --base with an image you have"
            )
        p = run(["bash", str(BASE_SCRIPT), base, LOCAL_BASE_PACKAGES], timeout=900)
        if p.returncode != 0:
            raise ImagesError(f"base image {base}: {BASE_SCRIPT.name} failed:\n{p.stdout[-800:]}{p.stderr[-800:]}")
        return base
    p = run([eng, "pull", base], timeout=900)
    if p.returncode != 0:
        last = (p.stderr.strip().splitlines() or ["no output"])[-1]
        raise ImagesError(
            f"base image {base}: not present locally and `{eng} pull` failed ({last}); "
            f"list local images with `{eng} images`, or use the local base --base {catalog.LOCAL_BASE}"
        )
    return base


_STEP = re.compile(r"^(?:\[(\d+)/\d+\] )?STEP (\d+)/\d+: (.*)$")


def parse_steps(log: str) -> list[Step]:
    """Steps from podman/buildah build output; a step is cached when '--> Using cache' follows it."""
    steps: list[Step] = []
    for line in log.splitlines():
        m = _STEP.match(line)
        if m:
            steps.append(Step(int(m.group(1) or 1), int(m.group(2)), m.group(3).strip(), False))
        elif line.startswith("--> Using cache") and steps:
            last = steps[-1]
            steps[-1] = Step(last.stage, last.number, last.instruction, True)
    return steps


def layers(eng: str, ref: str) -> list[Layer]:
    """Layers of `ref`, oldest first, with their sizes (podman/docker history)."""
    p = run([eng, "history", "--no-trunc", "--format", "json", ref])
    if p.returncode != 0:
        return []
    rows = json.loads(p.stdout or "[]")
    out = [
        Layer(int(r.get("size") or r.get("Size") or 0), r.get("CreatedBy") or r.get("createdBy") or "") for r in rows
    ]
    return list(reversed(out))


def size(eng: str, ref: str) -> int:
    """Image size in bytes (uncompressed, all layers)."""
    p = run([eng, "image", "inspect", "--format", "{{.Size}}", ref])
    return int(p.stdout.strip()) if p.returncode == 0 and p.stdout.strip().isdigit() else 0


def build(
    eng: str,
    ctx: Path,
    dockerfile: Path,
    ref: str,
    build_args: dict[str, str] | None = None,
    no_cache: bool = False,
    target: str | None = None,
    timeout: float = 900,
) -> BuildResult:
    """Build `dockerfile` in `ctx` as `ref`, timed; ImagesError with the log's tail when the build fails."""
    cmd = [eng, "build", "-f", str(dockerfile), "-t", ref]
    if eng == "podman":
        cmd.append("--layers")
    for k, v in (build_args or {}).items():
        cmd += ["--build-arg", f"{k}={v}"]
    if no_cache:
        cmd.append("--no-cache")
    if target:
        cmd += ["--target", target]
    t0 = time.perf_counter()
    p = run([*cmd, str(ctx)], timeout=timeout)
    seconds = time.perf_counter() - t0
    log = p.stdout + p.stderr
    if p.returncode != 0:
        tail = "\n".join(log.strip().splitlines()[-15:])
        raise ImagesError(f"image {ref}: build of {dockerfile.name} failed (exit {p.returncode}):\n{tail}")
    return BuildResult(ref, seconds, size(eng, ref), parse_steps(log), layers(eng, ref), log)


def remove(eng: str, *refs: str) -> None:
    """Remove images by reference, ignoring those that do not exist (only images the lab tagged)."""
    for ref in refs:
        if exists(eng, ref):
            run([eng, "rmi", "-f", ref])


def base_python(eng: str, base: str) -> str | None:
    """ "X.Y" of the base image's python3 (wheels must match it); None when it has none (CUDA devel images)."""
    p = run(
        [
            eng,
            "run",
            "--rm",
            "--entrypoint",
            "python3",
            base,
            "-c",
            "import sys; print('%d.%d' % sys.version_info[:2])",
        ],
        timeout=120,
    )
    out = p.stdout.strip()
    return out if p.returncode == 0 and re.fullmatch(r"\d+\.\d+", out) else None


def git_revision() -> str:
    p = subprocess.run(
        ["git", "-C", str(context.REPO_ROOT), "rev-parse", "--short", "HEAD"],
        capture_output=True,
        text=True,
        check=False,
    )
    return p.stdout.strip() or "unknown"


def build_image(
    name: str,
    base: str | None = None,
    args: dict[str, str] | None = None,
    no_cache: bool = False,
    eng: str | None = None,
    variant: str | None = None,
) -> BuildResult:
    """Build catalogue image `name` (or its `variant`) on `base` (default: its local base here), tagged from the
    catalogue; checks the name, variant, engine and base before building."""
    spec = catalog.image(name)  # KeyError naming the allowed images
    ref = spec.ref_of(variant)  # KeyError naming the allowed variants
    base = base or spec.local_base
    if base is None:
        raise ImagesError(
            f"image {name}: needs a CUDA devel base with nvcc (none exists on this host); "
            f"build it on a GPU host with --base {spec.gpu_base}"
        )
    eng = eng or engine()
    ensure_base(eng, base)
    build_args = {**spec.build_args, **(spec.variants.get(variant, {}) if variant else {}), **(args or {})}
    ctx = context.stage(spec, build_args, python=base_python(eng, base))
    build_args |= {"BASE_IMAGE": base, "VERSION": catalog.TAG, "REVISION": git_revision()}
    return build(eng, ctx, ctx / spec.dockerfile, ref, build_args, no_cache=no_cache)
