"""Dynamic shapes, as TensorRT profiles pose them, answered with torch.compile: one dynamic compiled model vs
static compiled variants per batch bucket (d04.e4, d15.e5, d22.e1–e5, d33.e1–e5). Compiled variants are kept for
the whole run (as built engines are), so the experiments of one run share them."""

from __future__ import annotations

from functools import lru_cache
from typing import Literal

from pydantic import Field

from ailab.contract import Column, Context, Output, Params, Series

Part = Literal["per_batch", "bad_buckets", "variant_memory", "memory_vs_batch", "stream"]


class ShapeParams(Params):
    parts: list[Part] = Field(min_length=1, description="which measurements to return")
    batches: list[int] = Field([1, 2, 4, 8, 16, 32, 64], min_length=1)
    buckets: list[int] = Field([1, 16, 64], min_length=1, description="static buckets (the profiles' opt sizes)")
    bad_buckets: list[int] = Field([64], min_length=1, description="a badly chosen bucket set")
    cudagraph_buckets: list[int] = Field(
        [], description="static buckets also measured with CUDA graphs (mode reduce-overhead) in variant_memory"
    )
    stream_requests: int = Field(300, gt=0)
    iters: int = Field(50, gt=0)
    plot: bool = False


@lru_cache(maxsize=2)
def _lab(device: str, quick: bool):
    import torch

    from workloads.engines.models import SmallCNN
    from workloads.engines.shapes import ShapeLab, allow_many_variants

    allow_many_variants()
    dt = torch.float16 if device == "cuda" else torch.float32
    model = (SmallCNN(8, 10) if quick else SmallCNN(32, 1000)).to(device, dt).eval()
    size = 32 if quick else 224
    return ShapeLab(model, (3, size, size), device, dt, None)


def shape_study(ctx: Context, p: ShapeParams) -> Output:
    """Latency/throughput per batch (dynamic vs bucket), bad buckets, memory per variant and per batch, a stream."""
    from workloads.engines.profiles import batch_profile
    from workloads.engines.tables import table, tensorrt_substitute
    from workloads.engines.trt import BuildConfig, trtexec_command

    lab = _lab(ctx.device, ctx.quick)
    out = Output(
        substitute=tensorrt_substitute(
            "torch.compile (Inductor, default mode): dynamic=True over the batch dimension for one min/opt/max "
            "profile; "
            "static compiled variants per bucket for per-profile engines, inputs padded up to the bucket"
        )
    )
    shape = f"SmallCNN (4 conv blocks + head) on {lab.sample}, {lab.dtype}".replace("torch.", "")
    if "per_batch" in p.parts:
        rows = [r.as_dict() for r in lab.latency_rows(p.batches, p.buckets, p.iters)]
        out.tables.append(
            table("per_batch", rows, caption=f"{shape}; buckets {p.buckets}; vs_dynamic = dynamic p50 / this p50")
        )
        if p.plot:
            for metric, unit in (("p50_ms", "ms"), ("throughput", "samples/s")):
                s = Series(f"{metric}_vs_batch", Column("batch", ""), Column(metric, unit), log_x=True)
                for r in rows:
                    s.point("dynamic" if r["variant"] == "dynamic" else "static buckets", r["batch"], r[metric])
                out.series.append(s)
    if "bad_buckets" in p.parts:
        good = lab.latency_rows(p.batches, p.buckets, p.iters)
        bad = lab.latency_rows(p.batches, p.bad_buckets, p.iters)
        rows = []
        for g, b in zip(
            [r for r in good if r.variant != "dynamic"], [r for r in bad if r.variant != "dynamic"], strict=True
        ):
            rows.append(
                {
                    "batch": g.batch,
                    "good_bucket": g.run_batch,
                    "good_p50_ms": g.p50_ms,
                    "bad_bucket": b.run_batch,
                    "bad_p50_ms": b.p50_ms,
                    "bad_slowdown": round(b.p50_ms / g.p50_ms, 3),
                }
            )
        out.tables.append(
            table(
                "bad_buckets",
                rows,
                caption=f"{shape}; good buckets {p.buckets} vs badly chosen {p.bad_buckets} (small batches padded up)",
            )
        )
    if "variant_memory" in p.parts:
        from workloads.engines.variant_memory import measure_all, memory_rows, variant_specs

        graphs = p.cudagraph_buckets if ctx.device == "cuda" else []
        if p.cudagraph_buckets and not graphs:
            out.notes.append(f"cudagraph_buckets {p.cudagraph_buckets} left out: CUDA graphs need a GPU")
        specs = variant_specs(ctx.device, ctx.quick, p.batches, p.buckets, graphs)
        results = measure_all(specs, ctx.workdir)
        out.tables.append(
            table(
                "variant_memory",
                memory_rows(results),
                caption=f"{shape}; each variant compiled (empty Inductor cache) and run at the batches it serves "
                f"in its own process: dynamic and eager over {p.batches}, static-bN at N; MiB above the model's "
                "weights, CUDA context excluded (see notes)",
            )
        )
        out.notes.append(
            "variant_memory counts, per fresh process: compile_s = first call (compile + run), warmup_s = the "
            "three passes after it (recompiles included); weights_mib = allocated by the model's parameters; "
            "peak_allocated_mib = torch.cuda.max_memory_allocated() during compile and warm-up above the weights; "
            "retained_allocated_mib = still allocated after warm-up; peak_reserved_mib = "
            "torch.cuda.max_memory_reserved() above the reserve after the weights (the caching pool, CUDA-graph "
            "pools included); device_used_mib = cudaMemGetInfo used after warm-up minus after the weights (pool "
            "plus loaded kernel modules and library workspaces outside the allocator; the context is in the "
            "baseline, not counted); device_used_over_eager_mib = that minus the eager row's; host_rss_delta_mib "
            "= this process's resident memory after warm-up minus before compiling (compile workers not counted)"
            if results[0]["device"] == "cuda"
            else "variant_memory on CPU: no device memory; compile_s and host_rss_delta_mib (resident memory after "
            "warm-up minus before compiling, one process per variant) only"
        )
        ctx.log(
            "variant processes: "
            + ", ".join(f"{r['variant']} {r['process_wall_s']:.1f}s" for r in results if "process_wall_s" in r)
        )
    if "memory_vs_batch" in p.parts:
        dyn = lab.dynamic(list(p.batches))
        rows = [{"batch": b, "peak_activation_mib": lab.peak_mib(dyn, b)} for b in p.batches]
        out.tables.append(
            table(
                "memory_vs_batch",
                rows,
                caption="peak device memory allocated during one forward of "
                "the dynamic variant, above what was allocated before it",
            )
        )
    if "stream" in p.parts:
        rows = [
            {"serving": "dynamic", **lab.stream(p.batches, None, p.stream_requests)},
            {"serving": f"buckets {p.buckets}", **lab.stream(p.batches, p.buckets, p.stream_requests)},
        ]
        out.tables.append(
            table(
                "stream",
                rows,
                caption=f"{p.stream_requests} back-to-back requests of random batch sizes from {p.batches}",
            )
        )
    prof = batch_profile("input", lab.sample, min(p.batches), p.buckets[len(p.buckets) // 2], max(p.batches))
    out.notes.append(
        "TensorRT equivalent: " + " ".join(trtexec_command(BuildConfig(profiles=(prof,)), "cnn.onnx", "cnn.engine"))
    )
    return out
