"""Stage a small build context per image: Dockerfile dir, .dockerignore, wheelhouse, source, Triton repositories.

Containers here cannot reach PyPI (the build network has no trust for this sandbox's HTTPS egress), but
the host can: Python dependencies are downloaded on the host into `wheels/` (`pip download`) and installed
in the build with `pip --no-index --find-links` from a bind mount. Debian packages (apt over HTTP) do work
inside builds; the workload images do not need any beyond their base.
"""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import sys
from pathlib import Path

from ailab.contract import paths
from workloads.images.catalog import ImageSpec

IMAGES_DIR = Path(__file__).resolve().parent
WORKLOADS_DIR = IMAGES_DIR.parent
REPO_ROOT = WORKLOADS_DIR.parent
IGNORED = shutil.ignore_patterns("__pycache__", "*.pyc", "*.pyo", ".pytest_cache", ".ruff_cache")


class ContextError(RuntimeError):
    """Staging a context failed; the message says what and how to fix it."""


def staging_root() -> Path:
    """Where staged contexts and wheelhouses live (.lab/images)."""
    return paths.state_dir() / "images"


def host_python() -> str:
    return f"{sys.version_info.major}.{sys.version_info.minor}"


def download_wheels(requirements: list[Path], dest: Path, python: str | None = None) -> list[Path]:
    """`pip download` the pinned requirements (and their deps) into dest; returns dest's wheel files.

    `python` is the base image's "X.Y"; when it differs from this host's, pip fetches manylinux x86_64
    wheels for that version. pip skips wheels already in dest, so a warm wheelhouse costs about a second.
    """
    dest.mkdir(parents=True, exist_ok=True)
    if requirements:
        cmd = [sys.executable, "-m", "pip", "download", "-q", "--only-binary=:all:", "-d", str(dest)]
        if python and python != host_python():
            cmd += ["--python-version", python, "--implementation", "cp"]
            for tag in ("manylinux2014_x86_64", "manylinux_2_28_x86_64", "any"):
                cmd += ["--platform", tag]
        for r in requirements:
            cmd += ["-r", str(r)]
        p = subprocess.run(cmd, capture_output=True, text=True, check=False)
        if p.returncode != 0:
            tail = "\n".join(p.stderr.strip().splitlines()[-5:])
            raise ContextError(f"pip download for {', '.join(r.name for r in requirements)} failed:\n{tail}")
    return sorted(dest.glob("*.whl"))


def copy_source(dest: Path) -> None:
    """Copy the `workloads` package and the contract floor it imports (`ailab/__init__.py`, `ailab/contract/` with
    its facts) to dest/src/, no caches, replacing an older copy."""
    src = dest / "src" / "workloads"
    if src.exists():
        shutil.rmtree(src)
    shutil.copytree(WORKLOADS_DIR, src, ignore=IGNORED)
    floor = dest / "src" / "ailab"
    if floor.exists():
        shutil.rmtree(floor)
    floor.mkdir(parents=True)
    shutil.copy2(paths.REPO_ROOT / "ailab" / "__init__.py", floor / "__init__.py")
    shutil.copytree(paths.REPO_ROOT / "ailab" / "contract", floor / "contract", ignore=IGNORED)


def write_repositories(dest: Path, weeks: list[int]) -> list[Path]:
    """Generate the Triton model repositories of `weeks` into dest/repository/weekNN (one source of truth)."""
    try:
        from workloads.serving.repository import build_repository, week_models
    except ImportError as exc:
        raise ContextError(f"workloads.serving.repository is not importable ({exc}); it generates the models") from exc
    root = dest / "repository"
    if root.exists():
        shutil.rmtree(root)
    written = [build_repository(week_models(w), root / f"week{w:02d}") for w in weeks]
    seen: dict[str, Path] = {}
    for path in sorted(root.rglob("*")):  # exports are written 0600 (mkstemp); the image's user must read them
        path.chmod(0o755 if path.is_dir() else 0o644)
        if path.is_file():  # weeks share most models: hardlink identical files so the layer holds each once
            digest = hashlib.sha256(path.read_bytes()).hexdigest()
            if digest in seen:
                path.unlink()
                path.hardlink_to(seen[digest])
            else:
                seen[digest] = path
    return written


def stage(
    spec: ImageSpec, build_args: dict[str, str], python: str | None = None, weeks: list[int] | None = None
) -> Path:
    """Build context for `spec`: its Dockerfile directory, .dockerignore, wheels/ for the base's `python`
    ("X.Y", default this host's), src/workloads (and src/cuda for the kernels), repository/."""
    ctx = staging_root() / "context" / spec.name
    ctx.mkdir(parents=True, exist_ok=True)
    image_dir = IMAGES_DIR / Path(spec.dockerfile).parent
    shutil.copytree(image_dir, ctx / image_dir.name, ignore=IGNORED, dirs_exist_ok=True)
    shutil.copy2(IMAGES_DIR / ".dockerignore", ctx / ".dockerignore")
    reqs = [image_dir / "requirements.txt"] if (image_dir / "requirements.txt").exists() else []
    torch_reqs = image_dir / "requirements-torch.txt"
    if torch_reqs.exists() and build_args.get("WITH_TORCH", "1") == "1":
        reqs.append(torch_reqs)
    # one wheelhouse per image: the ONNX-only variant does not carry the 190 MB torch wheel in its context
    wheels = ctx / "wheels"
    if wheels.exists():
        shutil.rmtree(wheels)
    house = staging_root() / "wheelhouse" / f"py{python or host_python()}"
    download_wheels(reqs, house, python)
    wheels.mkdir()
    for w in resolve_wheels(reqs, house):
        _link(w, wheels / w.name)
    copy_source(ctx)
    if spec.name == "cuda-kernels":
        if (ctx / "src" / "cuda").exists():
            shutil.rmtree(ctx / "src" / "cuda")
        shutil.copytree(REPO_ROOT / "cuda", ctx / "src" / "cuda", ignore=shutil.ignore_patterns("build"))
    if spec.name == "triton-models":
        write_repositories(ctx, weeks or list(range(1, 14)))
    return ctx


def resolve_wheels(requirements: list[Path], wheelhouse: Path) -> list[Path]:
    """The wheels in `wheelhouse` that the pinned `requirements` name (every line is `name==version`)."""
    wanted = {}
    for r in requirements:
        for line in r.read_text().splitlines():
            line = line.split("#", 1)[0].strip()
            if line:
                name, _, version = line.partition("==")
                wanted[_norm(name)] = version
    found = []
    for w in wheelhouse.glob("*.whl"):
        name, version = w.name.split("-")[:2]
        if wanted.get(_norm(name)) == version.split("+")[0]:
            found.append(w)
    missing = set(wanted) - {_norm(w.name.split("-")[0]) for w in found}
    if missing:
        raise ContextError(f"wheelhouse {wheelhouse}: no wheel for {', '.join(sorted(missing))}; pin them exactly")
    return found


def _norm(name: str) -> str:
    return name.lower().replace("_", "-").replace(".", "-")


def _link(src: Path, dst: Path) -> None:
    try:
        dst.hardlink_to(src)  # the torch wheel is 190 MB: link, don't copy
    except OSError:
        shutil.copy2(src, dst)
