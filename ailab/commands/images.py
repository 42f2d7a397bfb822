"""`lab images list | build [NAME...] [--base ...]`: the workload images, built with podman (or docker) and measured."""

from __future__ import annotations

import json
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from workloads.images import build as builder
from workloads.images import catalog, context, cuda_kernels

console = Console()
err = Console(stderr=True, soft_wrap=True)  # one line per error, whatever the terminal width
images_app = typer.Typer(help="Workload container images (workloads/images): list and build.", no_args_is_help=True)


def _fail(message: str) -> typer.Exit:
    err.print(f"[bold red]error:[/] {message}")
    return typer.Exit(2)


def _mib(n: int) -> str:
    return f"{n / (1 << 20):.2f}"


@images_app.command("list")
def list_images(as_json: Annotated[bool, typer.Option("--json", help="machine-readable output")] = False) -> None:
    """The catalogue: name, reference, base on GPU hosts and here."""
    rows = [
        {
            "name": s.name,
            "ref": s.ref,
            "variants": {v: s.ref_of(v) for v in s.variants},
            "gpu_base": s.gpu_base,
            "local_base": s.local_base,
            "about": s.description,
        }
        for s in catalog.IMAGES.values()
    ]
    if as_json:
        print(json.dumps(rows, indent=1))
        return
    t = Table("name", "reference", "base on GPU hosts", "base here", title=f"workload images (tag {catalog.TAG})")
    for r in rows:
        t.add_row(r["name"], r["ref"], r["gpu_base"], r["local_base"] or "[yellow]none by default (build --base)[/]")
    console.print(t)


def _parse_args(pairs: list[str]) -> dict[str, str]:
    out = {}
    for p in pairs:
        key, sep, value = p.partition("=")
        if not sep or not key:
            raise _fail(f"--arg {p!r}: expected KEY=VALUE, e.g. --arg WITH_TORCH=0")
        out[key] = value
    return out


def _build(
    name: str, base: str | None, args: dict[str, str], no_cache: bool, eng: str, variant: str | None
) -> builder.BuildResult:
    """One build of catalogue image `name`. cuda-kernels goes through workloads.images.cuda_kernels.build_image, the
    path its own command (`python -m workloads.images.cuda_kernels`) and container test use: the toolchain wheels,
    the runtime stage's base and the label naming the cuda/ sources; every other image through the generic builder."""
    if name != cuda_kernels.NAME:
        return builder.build_image(name, base, args, no_cache, eng, variant)
    if base is None:
        raise builder.ImagesError(
            f"image {name}: the catalogue gives it no local base (ailab/contract/facts/images.yaml); build it here on "
            f"the Debian base with the CUDA toolchain from PyPI wheels (--base {catalog.LOCAL_BASE}) or on a GPU host "
            f"with --base {catalog.IMAGES[name].gpu_base}"
        )
    return cuda_kernels.build_image(eng, base, no_cache=no_cache, args=args)


@images_app.command("build")
def build_images(
    names: Annotated[
        list[str] | None, typer.Argument(help=f"images to build (default: all): {', '.join(catalog.IMAGES)}")
    ] = None,
    base: Annotated[
        str, typer.Option(help="'local' (each image's base here), 'gpu' (each image's CUDA base) or an image reference")
    ] = "local",
    variant: Annotated[
        str | None, typer.Option(help="a named build-arg set tagged TAG-<variant>, e.g. onnx (inference without torch)")
    ] = None,
    arg: Annotated[list[str] | None, typer.Option("--arg", help="build argument KEY=VALUE, e.g. WITH_TORCH=0")] = None,
    cold: Annotated[
        bool, typer.Option(help="first build without the layer cache, then again warm (both timed)")
    ] = True,
    as_json: Annotated[bool, typer.Option("--json", help="machine-readable output")] = False,
) -> None:
    """Build images with podman/docker; print build time (cold and warm cache) and the size of every layer."""
    selected = names or [n for n, s in catalog.IMAGES.items() if base != "local" or s.local_base is not None]
    unknown = [n for n in selected if n not in catalog.IMAGES]
    if unknown:
        raise _fail(f"image {unknown[0]!r}: unknown (allowed: {', '.join(catalog.IMAGES)})")
    build_args = _parse_args(arg or [])
    for n in selected:
        try:
            catalog.IMAGES[n].ref_of(variant)
        except KeyError as exc:
            raise _fail(f"--variant {variant}: image {n} has no such variant ({exc.args[0]})") from None
    skipped = [n for n, s in catalog.IMAGES.items() if not names and n not in selected]
    try:
        eng = builder.engine()
    except builder.ImagesError as exc:
        raise _fail(str(exc)) from None
    report = []
    for name in selected:
        spec = catalog.IMAGES[name]
        chosen = {"local": spec.local_base, "gpu": spec.gpu_base}.get(base, base)
        runs = {}
        try:
            with console.status(f"building {spec.ref} on {chosen} ({'cold, then warm' if cold else 'cached'})"):
                if cold:
                    runs["cold"] = _build(name, chosen, build_args, True, eng, variant)
                runs["warm"] = _build(name, chosen, build_args, False, eng, variant)
        except (builder.ImagesError, context.ContextError) as exc:  # ContextError: the wheels could not be fetched
            raise _fail(str(exc)) from None
        last = runs["warm"]
        report.append(
            {
                "name": name,
                "ref": last.ref,
                "base": chosen,
                "engine": eng,
                "size_bytes": last.size_bytes,
                "build_s": {k: round(r.seconds, 2) for k, r in runs.items()},
                "rebuilt_steps_warm": [s.instruction for s in last.rebuilt],
                "layers": [{"size_bytes": la.size_bytes, "created_by": la.created_by} for la in last.layers],
            }
        )
    if as_json:
        print(json.dumps({"images": report, "skipped": skipped}, indent=1))
        return
    for r in report:
        t = Table("layer size (MiB)", "created by", title=f"{r['ref']} on {r['base']}")
        for la in r["layers"]:
            if la["size_bytes"]:
                t.add_row(_mib(la["size_bytes"]), la["created_by"].replace("/bin/sh -c #(nop) ", "")[:100])
        console.print(t)
    t = Table("image", "size (MiB)", "cold build (s)", "warm build (s)", "steps rebuilt warm", title="builds")
    for r in report:
        t.add_row(
            r["name"],
            _mib(r["size_bytes"]),
            str(r["build_s"].get("cold", "-")),
            str(r["build_s"]["warm"]),
            str(len(r["rebuilt_steps_warm"])),
        )
    console.print(t)
    for n in skipped:
        console.print(
            f"[yellow]skipped[/] {n}: no local base in the catalogue; build it by name with --base {catalog.LOCAL_BASE}"
            " or, on a GPU host, --base gpu"
        )


def register(app: typer.Typer) -> None:
    app.add_typer(images_app, name="images")
