"""Engines as files, answered with AOTInductor packages (.pt2): compile time, size, load time, first-batch latency
(d04.e5), switching between batch-1 and batch-16 packages (d29.e2, d29.e5), several loaded at once (d29.e3), two
versions side by side (d29.e4)."""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from pydantic import Field

from ailab.contract import Context, Output, Params, Table

if TYPE_CHECKING:
    from workloads.engines.aot_hold import ChildReport

Part = Literal["load", "switch", "memory", "versions"]


class AotParams(Params):
    parts: list[Part] = Field(min_length=1)
    batches: list[int] = Field([1, 16], min_length=1, description="one package per batch size")
    switch_requests: int = Field(400, gt=0)
    iters: int = Field(50, gt=0)
    child_timeout_s: float = Field(300, gt=0, description="memory part: limit for each child process (build, hold)")
    one_process_too: bool = Field(
        False, description="memory part: also build and hold in one process, as the run that crashed on the H200 did"
    )


@lru_cache(maxsize=2)
def _packages(device: str, quick: bool, workdir: str, batches: tuple[int, ...]):
    import torch

    from workloads.engines import aot
    from workloads.engines.aot_hold import cnn

    model, sample, dt = cnn(device, quick)
    pk = {
        b: aot.build(model, torch.randn(b, *sample, device=device, dtype=dt), Path(workdir) / f"cnn_b{b}.pt2", device)
        for b in batches
    }
    return model, pk, sample, dt


def _held_at_once(ctx: Context, p: AotParams, notes: list[str]) -> list[Table]:
    """d29.e3: one package per batch size, built in one child process and all loaded into another (and, with
    `one_process_too`, built and loaded in a third, as the crashed H200 run did); a row per package loaded and, if a
    holding child died, a row naming the package, the step and the signal, then the same package alone."""
    from workloads.engines.aot_hold import run_child

    base = {"device": ctx.device, "quick": ctx.quick}
    built = run_child(
        "build",
        {**base, "batches": list(p.batches), "outdir": str(ctx.workdir / "packages")},
        timeout_s=p.child_timeout_s,
    )
    pkgs = [{"path": e["file"], "batch": e["batch"]} for e in built.of("built")]
    if built.failure is not None:
        notes.append(f"building the packages stopped: {built.failure.summary()}; stack:\n{built.failure.stack}")
    tables = []
    if pkgs:
        report = run_child("hold", {**base, "packages": pkgs}, timeout_s=p.child_timeout_s)
        tables.append(_held_table(ctx, p, "packages_loaded", "built in another process", report, pkgs, notes))
    if p.one_process_too:
        spec = {**base, "batches": list(p.batches), "outdir": str(ctx.workdir / "packages-one-process")}
        report = run_child("build_hold", spec, timeout_s=p.child_timeout_s)
        tables.append(
            _held_table(ctx, p, "packages_loaded_one_process", "built in this same process", report, [], notes)
        )
    if os.environ.get("LD_PRELOAD"):
        notes.append(
            f"the child processes inherited LD_PRELOAD={os.environ['LD_PRELOAD']} from this process (besides the "
            "native_backtrace.c library they preload for crash stacks)"
        )
    notes.append(
        "packages_loaded: the packages are built in one child process and all loaded into another (faulthandler "
        "on), each run once as it is loaded, then each run again once all are held, checked against the eager model"
    )
    return tables


def _held_table(
    ctx: Context, p: AotParams, name: str, how_built: str, report: ChildReport, pkgs: list[dict], notes: list[str]
) -> Table:
    """One holding child's report as a table (and notes: its failure with the stack, memory after release); a
    package the child died in is loaded again alone, in a fresh process, and that outcome is a row too."""
    from workloads.engines.aot_hold import held_rows, run_child
    from workloads.engines.tables import table

    rows, cols = held_rows(report, ctx.device)
    f = report.failure
    if f is not None:
        notes.append(
            f"{name}: the process holding the packages died: {f.summary()}, after {len(report.of('loaded'))} "
            "packages were loaded; the rows before that one were reported before it died. "
            f"faulthandler stack:\n{f.stack}"
        )
        alone = [
            q
            for q in pkgs or [{"path": e["file"], "batch": e["batch"]} for e in report.of("built")]
            if Path(q["path"]).name == f.package
        ]
        if alone:  # is it that package, or holding it beside the others? the same steps in a fresh process
            solo = run_child("hold", {"device": ctx.device, "quick": ctx.quick, "packages": alone}, p.child_timeout_s)
            rows.append(
                {
                    "loaded": 1,
                    "package": f.package,
                    "batch": alone[0]["batch"],
                    "status": "alone in a fresh process: "
                    + ("ok" if solo.failure is None else f"died too, {solo.failure.summary()}"),
                }
            )
    for e in report.of("libstdcxx")[:1]:  # the in-process workaround for the H200 load crash (docs/engines.md)
        notes.append(f"{name}: {e['note']}")
    released = report.of("released")
    if released and ctx.device == "cuda":
        notes.append(
            f"{name}: device memory in use after releasing every package: "
            f"{released[0]['device_used_mib']:.1f} MiB above the start"
        )
    caption = f"packages (one per batch size, {how_built}) loaded into one process and run once, all held at the "
    caption += "same time" + (
        ": device memory in use (cudaMemGetInfo) above the start, after each load" if ctx.device == "cuda" else ""
    )
    return table(name, rows, caption=caption, columns=cols)


def aot_study(ctx: Context, p: AotParams) -> Output:
    import random

    import numpy as np
    import torch

    from workloads.engines import aot
    from workloads.engines.tables import table, tensorrt_substitute
    from workloads.engines.timing import time_calls, wall_once

    dev = ctx.device
    out = Output(
        substitute=tensorrt_substitute(
            "AOTInductor packages (torch.export + aoti_compile_and_package, "
            "loaded with aoti_load_package) as serialised engines"
        )
    )
    if set(p.parts) - {"memory"}:
        # these parts build, load and run in this process (each holds at most two packages at a time); the memory
        # part builds and loads in child processes (_held_at_once)
        model, pk, sample, dt = _packages(dev, ctx.quick, str(ctx.workdir.parent / "aot-packages"), tuple(p.batches))
        x = {b: torch.randn(b, *sample, device=dev, dtype=dt) for b in p.batches}

    if "load" in p.parts:
        rows = []
        for b, pkg in pk.items():
            runner, load_s = aot.load(pkg.path, dev)
            _, first_s = wall_once(lambda r=runner, b=b: r(x[b]), dev)
            lat = time_calls(lambda r=runner, b=b: r(x[b]), dev, warmup=3, iters=p.iters)
            err = float((runner(x[b]).float() - model(x[b]).float()).abs().max())
            rows.append(
                {
                    **pkg.as_dict(),
                    "load_s": load_s,
                    "first_batch_ms": first_s * 1e3,
                    "p50_ms": lat.p50_ms,
                    "first_over_p50": round(first_s * 1e3 / lat.p50_ms, 1),
                    "max_abs_err_vs_eager": err,
                }
            )
        out.tables.append(
            table(
                "package_load",
                rows,
                caption="compile (export + AOTInductor), file size, load, first batch and steady p50 per package",
            )
        )
    if "memory" in p.parts:
        out.tables.extend(_held_at_once(ctx, p, out.notes))
    if "switch" in p.parts or "versions" in p.parts:
        runners = {b: aot.load(pkg.path, dev)[0] for b, pkg in pk.items()}
        for b, r in runners.items():
            r(x[b])
    if "switch" in p.parts:
        rng = random.Random(0)
        plans = {
            "no switching (batch 1 only)": [min(p.batches)] * p.switch_requests,
            "alternate every request": [p.batches[i % len(p.batches)] for i in range(p.switch_requests)],
            "random mix": [rng.choice(p.batches) for _ in range(p.switch_requests)],
        }
        rows = []
        for name, plan in plans.items():
            per_b: dict[int, list[float]] = {b: [] for b in p.batches}
            for b in plan:
                per_b[b].append(time_calls(lambda b=b: runners[b](x[b]), dev, warmup=0, iters=1).p50_ms)
            for b, ms in per_b.items():
                if ms:
                    a = np.asarray(ms)
                    rows.append(
                        {
                            "plan": name,
                            "batch": b,
                            "requests": len(ms),
                            "p50_ms": float(np.percentile(a, 50, method="inverted_cdf")),
                            "p99_ms": float(np.percentile(a, 99, method="inverted_cdf")),
                            "std_ms": float(a.std()),
                        }
                    )
        out.tables.append(
            table(
                "switching",
                rows,
                caption="latency per request by package while the requests switch "
                "between the loaded batch packages (all loaded once, beforehand)",
            )
        )
    if "versions" in p.parts:
        import copy

        v2 = copy.deepcopy(model)
        with torch.no_grad():
            v2.head.bias.add_(1.0)
        b = min(p.batches)
        path2 = ctx.workdir / f"cnn_b{b}_v2.pt2"
        pkg2 = aot.build(v2, x[b], path2, dev)
        r1, r2 = runners[b], aot.load(pkg2.path, dev)[0]
        y1, y2 = r1(x[b]), r2(x[b])
        rows = [
            {
                "version": "v1",
                "package": pk[b].path.name,
                "max_abs_err_vs_own_eager": float((y1.float() - model(x[b]).float()).abs().max()),
            },
            {
                "version": "v2",
                "package": path2.name,
                "max_abs_err_vs_own_eager": float((y2.float() - v2(x[b]).float()).abs().max()),
            },
        ]
        for r in rows:
            r["outputs_differ_between_versions"] = bool((y1 - y2).abs().max() > 0.5)
        out.tables.append(
            table(
                "versions",
                rows,
                caption="two versions of the model loaded at once, each checked "
                "against its own eager model (v2 = v1 with head bias + 1)",
            )
        )
    return out
