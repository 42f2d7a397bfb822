"""Plugins as custom operators: Swish and Mish as CUDA C++ and Triton-lang kernels registered with torch.library,
against eager and compiled native ops (d12.e1–e5, d66.e1–e5)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from ailab.contract import Context, Output, Params

Part = Literal["latency", "first_call", "shapes", "serialize", "threads"]


class OpParams(Params):
    parts: list[Part] = Field(min_length=1)
    acts: list[Literal["swish", "mish"]] = Field(["swish", "mish"], min_length=1)
    batches: list[int] = Field([1, 16, 64], min_length=1, description="rows of the [batch, features] input")
    features: int = Field(65536, gt=0, description="elements per row")
    threads: list[int] = Field([1, 4, 8], min_length=1)
    calls_per_thread: int = Field(200, gt=0)
    iters: int = Field(100, gt=0)


def _impls(device: str) -> list[str]:
    return ["cuda", "triton"] if device == "cuda" else ["reference"]


def op_study(ctx: Context, p: OpParams) -> Output:
    import subprocess
    import sys
    import threading
    import time

    import torch

    from workloads.engines import custom_ops as co
    from workloads.engines.tables import table, tensorrt_substitute
    from workloads.engines.timing import time_calls, wall_once

    dev = ctx.device
    dt = torch.float16 if dev == "cuda" else torch.float32
    impls = _impls(dev)
    out = Output(
        substitute=tensorrt_substitute(
            "torch.library custom ops (ailab::swish, ailab::mish) with CUDA C++ (NVRTC via CuPy) and Triton-lang "
            "kernels "
            "instead of IPluginV3 plugins"
        )
    )
    if "latency" in p.parts:
        rows = []
        for act in p.acts:
            op = co.OPS[act]
            native = (
                (lambda x: torch.nn.functional.silu(x)) if act == "swish" else (lambda x: torch.nn.functional.mish(x))
            )
            compiled = torch.compile(native, dynamic=False)
            for b in p.batches:
                x = torch.randn(b, p.features, device=dev, dtype=dt)
                ref = co.reference(x, act).float()
                cands = {"eager native": native, "compiled native": compiled}
                cands.update({f"custom op ({i})": (lambda x, i=i, op=op: op(x, i)) for i in impls})
                base = None
                for name, fn in cands.items():
                    fn(x)
                    lat = time_calls(lambda fn=fn, x=x: fn(x), dev, warmup=5, iters=p.iters)
                    base = base or lat.p50_ms
                    gbs = 2 * x.numel() * x.element_size() / (lat.p50_ms / 1e3) / 1e9
                    rows.append(
                        {
                            "act": act,
                            "batch": b,
                            "impl": name,
                            "p50_ms": lat.p50_ms,
                            "GB_per_s": gbs,
                            "vs_eager_native": round(base / lat.p50_ms, 3),
                            "max_abs_err": float((fn(x).float() - ref).abs().max()),
                        }
                    )
        out.tables.append(
            table(
                "op_latency",
                rows,
                caption=f"[batch, {p.features}] {dt} inputs; GB/s counts one read "
                "and one write; error vs a float32 reference",
            )
        )
    if "first_call" in p.parts:
        rows = []
        co.cache_clear()
        for act in p.acts:
            for i in impls:
                x = torch.randn(16, p.features, device=dev, dtype=dt)
                _, first = wall_once(lambda i=i, x=x, act=act: co.OPS[act](x, i), dev)
                lat = time_calls(lambda i=i, x=x, act=act: co.OPS[act](x, i), dev, warmup=0, iters=p.iters)
                rows.append(
                    {
                        "act": act,
                        "impl": i,
                        "first_call_ms": first * 1e3,
                        "later_p50_ms": lat.p50_ms,
                        "first_over_later": round(first * 1e3 / lat.p50_ms, 1),
                    }
                )
        out.tables.append(
            table(
                "first_call",
                rows,
                caption="first call compiles the kernel and fills the op's cache "
                "(keyed by kernel and dtype); later calls reuse it",
            )
        )
    if "shapes" in p.parts:
        rows = []
        shapes = [(1,), (7,), (1023,), (3, 5, 7), (2, 16, 1025), (64, 4096), (0, 8)]
        for act in p.acts:
            for i in impls:
                ok = 0
                worst = 0.0
                for s in shapes:
                    x = torch.randn(*s, device=dev, dtype=dt)
                    y = co.OPS[act](x, i)
                    err = float((y.float() - co.reference(x, act).float()).abs().max()) if x.numel() else 0.0
                    worst = max(worst, err)
                    ok += y.shape == x.shape and err < (2e-2 if dt == torch.float16 else 1e-5)
                comp_ok = None  # compiling takes half a minute on a CPU: checked where the op has GPU kernels
                if dev == "cuda":
                    fn = torch.compile(co.ActBlock(act, i).to(dev, dt).eval(), dynamic=True)
                    with torch.no_grad():
                        comp_ok = all(
                            fn(torch.randn(b, 256, device=dev, dtype=dt)).shape == (b, 256) for b in (1, 5, 33, 64)
                        )
                rows.append(
                    {
                        "act": act,
                        "impl": i,
                        "shapes_checked": len(shapes),
                        "shapes_correct": ok,
                        "worst_abs_err": worst,
                        "compiled_dynamic_batch_ok": comp_ok,
                    }
                )
        out.tables.append(
            table(
                "dynamic_shapes",
                rows,
                caption=f"shapes {shapes} (empty included) against the "
                "reference; and an ActBlock compiled with dynamic=True at batches 1, 5, 33, 64",
            )
        )
    if "serialize" in p.parts:
        rows = []
        for act in p.acts:
            i = impls[-1]
            blk = co.ActBlock(act, i).to(dev, dt).eval().requires_grad_(False)
            x = torch.randn(8, 256, device=dev, dtype=dt)
            batch = torch.export.Dim("batch", min=1, max=4096)
            ep = torch.export.export(blk, (x,), dynamic_shapes=({0: batch},))
            path = ctx.workdir / f"actblock_{act}.pt2"
            torch.export.save(ep, str(path))
            loaded = torch.export.load(str(path)).module()
            x2 = torch.randn(33, 256, device=dev, dtype=dt)
            same = float((loaded(x2).float() - blk(x2).float()).abs().max())
            code = (
                f"import torch; p=r'{path}'\n"
                "try:\n torch.export.load(p).module()(torch.randn(4,256,device='" + dev + "',dtype=" + str(dt) + "))"
                "; print('LOADED')\nexcept Exception as e: print('ERROR', type(e).__name__, str(e)[:160])"
            )
            fresh = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
            with_op = subprocess.run(
                [sys.executable, "-c", "import workloads.engines.custom_ops\n" + code],
                capture_output=True,
                text=True,
                timeout=300,
            )
            rows.append(
                {
                    "act": act,
                    "impl": i,
                    "file_kib": path.stat().st_size / 1024,
                    "reload_max_abs_err": same,
                    "fresh_process_without_op": (fresh.stdout.strip() or fresh.stderr.strip()[-160:])[:160],
                    "fresh_process_with_op": (with_op.stdout.strip() or with_op.stderr.strip()[-160:])[:160],
                }
            )
        out.tables.append(
            table(
                "serialize",
                rows,
                caption="torch.export save/load of an ActBlock with a dynamic batch; "
                "run at batch 33 after reload; then loaded in fresh processes without and with the op "
                "library imported (the plugin-library compatibility check)",
            )
        )
        _tensorrt_plugins(ctx, p, out)
    if "threads" in p.parts:
        rows = []
        for act in p.acts:
            for i in impls:
                for n in p.threads:
                    xs = [torch.randn(16, p.features, device=dev, dtype=dt) for _ in range(n)]
                    refs = [co.reference(x, act) for x in xs]
                    errs: list[float] = [0.0] * n
                    barrier = threading.Barrier(n + 1)

                    def work(k: int, i: str = i, act: str = act, xs=xs, refs=refs, errs=errs, barrier=barrier) -> None:
                        stream = torch.cuda.Stream() if dev == "cuda" else None
                        barrier.wait()
                        ctxm = torch.cuda.stream(stream) if stream is not None else _null()
                        with ctxm:
                            for _ in range(p.calls_per_thread):
                                y = co.OPS[act](xs[k], i)
                            if stream is not None:
                                stream.synchronize()
                        errs[k] = float((y.float() - refs[k].float()).abs().max())

                    ts = [threading.Thread(target=work, args=(k,)) for k in range(n)]
                    for t in ts:
                        t.start()
                    barrier.wait()
                    t0 = time.perf_counter()
                    for t in ts:
                        t.join()
                    secs = time.perf_counter() - t0
                    calls = n * p.calls_per_thread
                    rows.append(
                        {
                            "act": act,
                            "impl": i,
                            "threads": n,
                            "calls": calls,
                            "calls_per_s": calls / secs,
                            "worst_abs_err": max(errs),
                        }
                    )
                one = next(r for r in rows if r["act"] == act and r["impl"] == i and r["threads"] == p.threads[0])
                for r in rows:
                    if r["act"] == act and r["impl"] == i:
                        r["vs_first"] = round(r["calls_per_s"] / one["calls_per_s"], 3)
        out.tables.append(
            table(
                "threads",
                rows,
                caption="each thread calls the op on its own CUDA stream on its own "
                "[16, features] input; output checked per thread",
            )
        )
    return out


def _tensorrt_plugins(ctx: Context, p: OpParams, out: Output) -> None:
    """The TensorRT path of the serialisation question: the ActBlock exported to ONNX with the ops as plugin nodes
    (everywhere), and where TensorRT and the plugin library exist, FP16 engines built with the plugins and run."""
    import torch

    from ailab.contract.probes import has_tensorrt
    from workloads.engines import custom_ops as co
    from workloads.engines import trt_act_plugins as tp
    from workloads.engines.tables import table
    from workloads.engines.trt import BuildConfig

    rows = []
    for act in p.acts:
        onnx_path = tp.export_with_plugins(
            co.ActBlock(act, "reference", dim=256), (torch.randn(2, 256),), ctx.workdir / f"actblock_{act}_plugin.onnx"
        )
        for n in tp.plugin_nodes(onnx_path):
            rows.append({"act": act, "op_type": n["op_type"], "domain": n["domain"], **n["attributes"]})
    out.tables.append(
        table(
            "trt_plugin_onnx",
            rows,
            caption="plugin nodes of the ActBlock's ONNX export, as TensorRT's ONNX parser maps them to the "
            "IPluginV3 plugins of workloads/engines/trt_plugins/act_plugin.cpp",
        )
    )
    lib = tp.default_library()
    out.notes.append(
        "TensorRT plugin build: "
        + " ".join(tp.trtexec_plugin_command(BuildConfig(), "actblock_swish_plugin.onnx", "actblock.engine", str(lib)))
    )
    if not has_tensorrt():
        out.notes.append(tp.NEEDS_TENSORRT_PLUGIN)
        return
    if ctx.device != "cuda":
        out.notes.append("TensorRT plugin path not run: engines need --device cuda")
        return
    if not lib.is_file():
        built = tp.build_plugin_library()
        if built.library is None:
            out.notes.append("TensorRT plugin path not run: the plugin library did not build (" + tp.SKIP_MESSAGE + ")")
            return
    rows = [r.as_dict() for r in tp.plugin_engine_rows(ctx.workdir, list(p.acts), 16, 256, p.iters, lib)]
    out.tables.append(
        table("tensorrt_plugin", rows, caption="FP16 engines of the ActBlock with the Swish/Mish plugin, batch 16")
    )


class _null:  # noqa: N801
    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: object) -> None:
        return None
