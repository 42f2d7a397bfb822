"""Image builds with podman (d01): naive vs layered (e1), single vs multi-stage (e2), apt vs pip vs micromamba (e3).

The Dockerfiles are workloads/images/d01/*.Dockerfile; each run stages them with a wheelhouse in ctx.workdir and
tags images localhost/ailab-d01-<name>:latest (removed and rebuilt on every run, so no stale layers pile up).
"""

from __future__ import annotations

import re
import shutil
import socket
import statistics
import time
from pathlib import Path

from pydantic import Field

from ailab.contract import Context, Output, Params, Table
from workloads.images import build as b
from workloads.images import catalog, context

IMAGES = Path(__file__).resolve().parents[1]  # workloads/images
D01 = IMAGES / "d01"
MIB = 1 << 20
# an image reference as podman/docker take it: [registry/]name[:tag][@digest]
IMAGE_REF = r"^[a-z0-9][a-z0-9._\-/:@]*$"


class BuildParams(Params):
    base: str | None = Field(
        default=None,
        pattern=IMAGE_REF,
        description=f"base image the Dockerfiles start FROM; default the local Debian base {catalog.LOCAL_BASE}, "
        "built with podman + mmdebstrap when missing",
    )


class InstallerParams(BuildParams):
    repeats: int = Field(default=5, ge=1, le=50, description="container starts timed after the first one")


def _stage(ctx: Context) -> Path:
    """d01/ copied to the workdir, with wheels/ (pip download on the host) holding d01/requirements.txt's pins."""
    dest = ctx.workdir / "d01-context"
    if dest.exists():
        shutil.rmtree(dest)
    shutil.copytree(D01, dest, ignore=context.IGNORED)
    house = context.staging_root() / "wheelhouse" / f"py{context.host_python()}"
    context.download_wheels([D01 / "requirements.txt"], house)
    (dest / "wheels").mkdir()
    for w in context.resolve_wheels([D01 / "requirements.txt"], house):
        shutil.copy2(w, dest / "wheels" / w.name)
    shutil.copy2(D01 / "requirements.txt", dest / "wheels" / "requirements.txt")
    shutil.copy2(IMAGES / ".dockerignore", dest / ".dockerignore")
    return dest


def _prepare(ctx: Context, p: BuildParams) -> tuple[str, str, Path, int]:
    """Engine, base image (built if missing), staged context and the base image's size in bytes."""
    eng = b.engine()
    base = b.ensure_base(eng, p.base or catalog.LOCAL_BASE)
    return eng, base, _stage(ctx), b.size(eng, base)


def _cold(eng: str, stage: Path, name: str, base: str, target: str | None = None) -> b.BuildResult:
    ref = f"localhost/ailab-d01-{name}:latest"
    b.remove(eng, ref)
    return b.build(eng, stage, stage / f"{name}.Dockerfile", ref, {"BASE_IMAGE": base}, no_cache=True, target=target)


def _nonempty(layers: list[b.Layer]) -> int:
    return sum(1 for la in layers if la.size_bytes > 0)


def _short(instruction: str) -> str:
    return instruction if len(instruction) <= 70 else instruction[:67] + "..."


def naive_vs_layered(ctx: Context, p: BuildParams) -> Output:
    """d01.e1: image size and build time, cold and after a one-line source edit, with the steps that were rebuilt."""
    eng, base, stage, base_size = _prepare(ctx, p)
    builds = Table.of(
        "builds",
        [
            ("Dockerfile", ""),
            ("build", ""),
            ("build time", "s"),
            ("image size", "MiB"),
            ("over base", "MiB"),
            ("layers with files", ""),
            ("steps run", ""),
            ("steps from cache", ""),
        ],
        caption=f"{eng} on {base}; cold = --no-cache; edit = VERSION line of app/main.py changed, cache on; "
        "layers with files include the base image's one layer",
    )
    layers = Table.of("layers", [("Dockerfile", ""), ("created by", ""), ("size", "MiB")], "non-empty layers, cold")
    out = Output(tables=[builds, layers])
    main_py = stage / "app" / "main.py"
    original = main_py.read_text()
    for name in ("naive", "layered"):
        main_py.write_text(original)
        cold = _cold(eng, stage, name, base)
        main_py.write_text(original.replace('VERSION = "1"', 'VERSION = "2"'))
        edit = b.build(eng, stage, stage / f"{name}.Dockerfile", cold.ref, {"BASE_IMAGE": base})
        for label, r in (("cold", cold), ("after source edit", edit)):
            run_steps = [s for s in r.steps if not s.instruction.startswith(("FROM", "ARG"))]
            builds.add(
                name,
                label,
                round(r.seconds, 2),
                round(r.size_bytes / MIB, 1),
                round((r.size_bytes - base_size) / MIB, 1),
                _nonempty(r.layers),
                len(r.rebuilt),
                len(run_steps) - len(r.rebuilt),
            )
        for la in cold.layers[1:]:
            if la.size_bytes:
                layers.add(
                    name,
                    _short(la.created_by.replace("/bin/sh -c #(nop) ", "").replace("/bin/sh -c ", "")),
                    round(la.size_bytes / MIB, 3),
                )
        out.notes.append(
            f"{name}: after the edit {eng} re-ran: " + "; ".join(_short(s.instruction) for s in edit.rebuilt)
        )
        out.notes.append(f"{name}: container prints: {_run_output(eng, edit.ref)}")
    main_py.write_text(original)
    out.notes.append(
        "Naive puts `COPY app` first, so a one-line edit invalidates every apt layer after it; its apt "
        "lists and .deb archives stay in the layers even if a later step deleted them."
    )
    return out


def _run_output(eng: str, ref: str, *cmd: str) -> str:
    p = b.run([eng, "run", "--rm", ref, *cmd], timeout=120)
    return (p.stdout.strip() or p.stderr.strip()).splitlines()[-1] if (p.stdout or p.stderr).strip() else ""


def single_vs_multi(ctx: Context, p: BuildParams) -> Output:
    """d01.e2: the same build as one stage and as builder + runtime; size of the image that ships."""
    eng, base, stage, base_size = _prepare(ctx, p)
    t = Table.of(
        "images",
        [
            ("image", ""),
            ("build", ""),
            ("build time", "s"),
            ("image size", "MiB"),
            ("over base", "MiB"),
            ("layers with files", ""),
            ("gcc in image", ""),
        ],
        caption=f"{eng} on {base}; the multi-stage builder repeats the single-stage steps, so its layers come from "
        "the cache and only the runtime stage is built; the builder stage is measured as its own image",
    )
    out = Output(tables=[t])
    single = _cold(eng, stage, "single-stage", base)
    multi_ref = "localhost/ailab-d01-multi-stage:latest"
    b.remove(eng, multi_ref)
    multi = b.build(eng, stage, stage / "multi-stage.Dockerfile", multi_ref, {"BASE_IMAGE": base})
    builder = b.build(
        eng,
        stage,
        stage / "multi-stage.Dockerfile",
        "localhost/ailab-d01-builder:latest",
        {"BASE_IMAGE": base},
        target="builder",
    )
    rows = (
        ("single-stage", "cold", single),
        ("multi-stage: builder stage", "cached", builder),
        ("multi-stage: runtime", f"{len(multi.rebuilt)} steps run", multi),
    )
    for label, how, r in rows:
        has_gcc = b.run([eng, "run", "--rm", r.ref, "sh", "-c", "command -v gcc"], timeout=60).returncode == 0
        t.add(
            label,
            how,
            round(r.seconds, 2),
            round(r.size_bytes / MIB, 1),
            round((r.size_bytes - base_size) / MIB, 1),
            _nonempty(r.layers),
            "yes" if has_gcc else "no",
        )
    saved = (single.size_bytes - multi.size_bytes) / MIB
    out.notes.append(
        f"runtime stage is {saved:.1f} MiB smaller than the single-stage image: no compiler, headers, "
        "pip or setuptools; it still runs: " + _run_output(eng, multi.ref, "fastsum", "1000")
    )
    return out


def _start_times(eng: str, ref: str, repeats: int) -> tuple[float, float, float]:
    """Wall time of `run --rm ref python3 -c 'import numpy, onnx'`: first (new container), median of the rest, s;
    and the import time measured inside the container, s (median)."""
    code = "import time; t=time.perf_counter(); import numpy, onnx; print(time.perf_counter()-t)"
    walls, inner = [], []
    for _ in range(repeats + 1):
        t0 = time.perf_counter()
        p = b.run([eng, "run", "--rm", ref, "python3", "-c", code], timeout=120)
        walls.append(time.perf_counter() - t0)
        if p.returncode != 0:
            raise b.ImagesError(f"image {ref}: stack import failed: {p.stderr.strip()[-300:]}")
        inner.append(float(p.stdout.strip().splitlines()[-1]))
    return walls[0], statistics.median(walls[1:]), statistics.median(inner)


def _cause(log: str) -> str:
    """The line of a failed build's log that says why: TLS/DNS/network first, then pip's or apt's own ERROR."""
    lines = [ln.strip() for ln in log.splitlines() if ln.strip()]
    for pattern in (r"\[SSL: [^\]]+\][^(']*", r"Temporary failure in name resolution|Could not resolve[^'\"]*"):
        for ln in lines:
            if m := re.search(pattern, ln):
                return m.group(0).strip()
    errors = [ln for ln in lines if ln.startswith(("ERROR:", "E:"))]
    return (errors or lines or ["no output"])[0][:300]


def _micromamba_reason() -> str:
    """Why micromamba cannot be used here (or '' when it could be)."""
    if shutil.which("micromamba") is None:
        return (
            "no micromamba binary: PyPI has no micromamba package and Debian bookworm none either; "
            "its installer downloads from micro.mamba.pm"
        )
    try:
        socket.getaddrinfo("conda.anaconda.org", 443)
    except OSError as exc:
        return f"conda-forge unreachable: conda.anaconda.org does not resolve ({exc.strerror or exc})"
    return ""


def installers(ctx: Context, p: InstallerParams) -> Output:
    """d01.e3: numpy + ONNX installed by apt, by pip from a host wheelhouse, by pip from the index, by micromamba."""
    eng, base, stage, base_size = _prepare(ctx, p)
    repeats = p.repeats
    t = Table.of(
        "installers",
        [
            ("installer", ""),
            ("status", ""),
            ("numpy / onnx", ""),
            ("build time", "s"),
            ("image size", "MiB"),
            ("over base", "MiB"),
            ("first start", "s"),
            ("start median", "s"),
            ("import in container", "s"),
        ],
        caption=f"{eng} on {base}; start = `{eng} run --rm IMAGE python3 -c 'import numpy, onnx'` wall time "
        f"(first new container, then median of {repeats}); page cache as it is (not dropped)",
    )
    out = Output(tables=[t])
    for name, label in (
        ("apt", "apt (Debian packages)"),
        ("pip-wheelhouse", "pip, host wheelhouse"),
        ("pip-index", "pip, PyPI inside the build"),
    ):
        try:
            r = _cold(eng, stage, name, base)
        except b.ImagesError as exc:
            t.add(label, "build failed", None, None, None, None, None, None, None)
            out.notes.append(f"{label}: the build failed here: {_cause(str(exc))}")
            continue
        versions = _run_output(
            eng, r.ref, "python3", "-c", "import numpy, onnx; print(numpy.__version__, onnx.__version__)"
        )
        first, median, inner = _start_times(eng, r.ref, repeats)
        t.add(
            label,
            "built",
            versions.replace(" ", " / "),
            round(r.seconds, 2),
            round(r.size_bytes / MIB, 1),
            round((r.size_bytes - base_size) / MIB, 1),
            round(first, 3),
            round(median, 3),
            round(inner, 3),
        )
    reason = _micromamba_reason()
    t.add("micromamba (conda-forge)", "not available here" if reason else "not implemented", *([None] * 7))
    out.notes.append(f"micromamba: {reason or 'available on this host but the lab has no micromamba Dockerfile yet'}")
    return out
