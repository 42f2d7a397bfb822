"""d65 convolution tables: bench_conv's kernels (direct, im2col + GEMM, Winograd) and cuDNN, one table per layer
(the runner is experiments/convolution.py)."""

from __future__ import annotations

import math

from ailab.contract import Table
from workloads.kernels.jsonl import Record

BASELINES = ("cuDNN", "direct")
CAPTION = (
    "TFLOP/s counts direct-convolution FLOPs 2*N*K*C*9*H*W for every implementation (for Winograd an *effective* "
    "rate: it does fewer multiplies). FP32, TF32 off (cuBLAS default math; torch allow_tf32=False). cuDNN = "
    "torch.nn.functional.conv2d with cudnn.benchmark=True, i.e. the fastest algorithm cuDNN finds for the shape; "
    "its workspace is the caching allocator's peak growth during one call beyond the output; benchmark mode times the "
    "candidate algorithms once per process, so its pick can change between runs (seen on an H100: FFT or implicit "
    "GEMM for the 28x28 layer). Times: median of "
    "CUDA-event-timed calls after warm-up, inputs rotated over > 200 MB. rel. error: ||y - ref|| / ||ref|| against a "
    "float64 CPU convolution of images 0 and N-1 (outputs poisoned with NaN before the checked run)."
)
WINOGRAD = "Winograd F(2x2,3x3)"


def layer_tables(rows: list[Record], baseline: str) -> list[Table]:
    """One table per layer (first-seen order): every implementation against the baseline's throughput."""
    if baseline not in BASELINES:
        raise ValueError(f"baseline {baseline!r}: allowed values are {', '.join(BASELINES)}")
    cols = [
        ("implementation", ""),
        ("GEMM", ""),
        ("time", "ms"),
        ("throughput", "TFLOP/s"),
        (f"of {baseline}", "%"),
        ("rel. error", ""),
        ("workspace", "MiB"),
    ]
    layers: dict[str, list[Record]] = {}
    for r in rows:
        layers.setdefault(r.get("layer"), []).append(r)
    tables = []
    for layer, rs in layers.items():
        base = next((r.get("throughput") for r in rs if str(r.get("implementation")).startswith(baseline)), math.nan)
        t = Table.of(f"3x3 conv {layer} (stride 1, pad 1, fp32)", cols, caption=CAPTION)
        for r in rs:
            pct = 100 * r.get("throughput") / base if base and math.isfinite(base) else math.nan
            t.add(
                r.get("implementation"),
                r.get("GEMM"),
                r.get("time"),
                r.get("throughput"),
                pct,
                r.get("rel. error"),
                r.get("workspace"),
            )
        tables.append(t)
    return tables


def stage_table(stages: list[Record]) -> Table:
    """Per layer and implementation, each stage's time and its share of the stages' sum."""
    t = Table.of(
        "convolution stages: where the time goes (each stage timed alone)",
        [("layer", ""), ("implementation", ""), ("stage", ""), ("time", "ms"), ("share", "%")],
        caption="Shares are of the sum of that implementation's stages with our own GEMM (the cuBLAS GEMM row is "
        "shown for comparison and left out of the sum).",
    )
    for r in stages:
        own = [
            s.get("time")
            for s in stages
            if s.get("layer") == r.get("layer")
            and s.get("implementation") == r.get("implementation")
            and "cuBLAS" not in s.get("stage")
        ]
        share = 100 * r.get("time") / sum(own) if "cuBLAS" not in r.get("stage") and sum(own) > 0 else math.nan
        t.add(r.get("layer"), r.get("implementation"), r.get("stage"), r.get("time"), share)
    return t


def multiply_ratio(h: int, w: int) -> float:
    """Direct/im2col multiplies over Winograd tile-GEMM multiplies per (k, c) pair: 9HW / (16 ceil(H/2) ceil(W/2))."""
    return 9.0 * h * w / (16.0 * ((h + 1) // 2) * ((w + 1) // 2))


def winograd_note(rows: list[Record], stages: list[Record]) -> str:
    """Winograd's arithmetic saving (2.25x fewer multiplies in the tile GEMMs) against what was measured."""
    parts = []
    for layer in dict.fromkeys(r.get("layer") for r in rows):
        rs = [r for r in rows if r.get("layer") == layer]
        t = _time(rs, "im2col", "own"), _time(rs, WINOGRAD, "own"), _time(rs, "im2col", "cuBLAS")
        t += (_time(rs, WINOGRAD, "cuBLAS"),)
        ideal = multiply_ratio(rs[0].get("H"), rs[0].get("W"))
        s = f"{layer}: multiplies /{ideal:.2f}; whole conv {t[0] / t[1]:.2f}x (own GEMM), {t[2] / t[3]:.2f}x (cuBLAS)"
        st = {(r.get("implementation"), r.get("stage")): r.get("time") for r in stages if r.get("layer") == layer}
        g_i, g_w = st.get(("im2col + GEMM", "GEMM (own)")), st.get((WINOGRAD, "16 GEMMs (own)"))
        if g_i and g_w:
            tr = sum(v for (impl, stage), v in st.items() if impl == WINOGRAD and "GEMM" not in stage)
            s += f"; GEMM stage alone (own) {g_i / g_w:.2f}x"
            s += f"; transforms {100 * tr / (tr + g_w):.0f}% of Winograd's time"
        parts.append(s)
    return (
        "Winograd F(2x2,3x3) needs 16 multiplies per 2x2 output tile and channel pair where direct/im2col need "
        "4*9 = 36: 2.25x fewer in the tile GEMMs (fewer for odd H/W: the partial last tile is computed whole). "
        "Measured speedup of Winograd over im2col with the same GEMM: " + "; ".join(parts) + "."
    )


def _time(rows: list[Record], impl: str, gemm: str) -> float:
    return next(
        (r.get("time") for r in rows if str(r.get("implementation")).startswith(impl) and gemm in r.get("GEMM")),
        math.nan,
    )


TC_CAPTION = (
    "Issue 22's tensor-core convolution against cuDNN at the same precision and layout: NHWC fp16 activations, fp16 "
    "filters (KRSC for ours, channels_last for torch), fp32 accumulation, fp16 output. Ours: implicit GEMM (M = N*H*W "
    "output pixels, N = K output channels, reduction 9C gathered on the fly with cp.async, zero-filled padding), "
    "mma.sync m16n8k16, one row per tile configuration. cuDNN = torch.nn.functional.conv2d on channels_last fp16 "
    "tensors with cudnn.benchmark=True, timed in the same run. Times: median over CUDA-event-timed batches of 10 "
    "back-to-back calls, divided by 10, each batch queued behind a GPU spin kernel before its start event (ours: "
    "C++ launches behind a ~0.5 ms spin; cuDNN: torch.cuda._sleep of ~2 ms, longer because torch dispatches each "
    "conv2d from Python), so no launch or dispatch gap is timed on either side; inputs rotated over > 200 MB where "
    "a layer's input is small. "
    "rel. error: ||y - ref|| / ||ref|| against a float64 CPU convolution of the same fp16 inputs, images 0 and N-1 "
    "(outputs poisoned with NaN first); check = pass below the tolerance column (fp16 output rounding alone gives "
    "about 3e-4); a kernel that fails is not timed. % of cuDNN: throughput over the cuDNN fp16 row of the layer."
)


def tc_table(rows: list[Record]) -> Table:
    """bench_conv --fp16's conv_tc rows and cuDNN's fp16 NHWC rows, by layer, with each row's % of that cuDNN row."""
    t = Table.of(
        "3x3 conv on tensor cores (NHWC fp16 in, fp32 accumulate) vs cuDNN at the same precision and layout",
        [
            ("layer", ""),
            ("implementation", ""),
            ("kernels", ""),
            ("time", "ms"),
            ("throughput", "TFLOP/s"),
            ("of cuDNN fp16", "%"),
            ("rel. error", ""),
            ("check", ""),
        ],
        caption=TC_CAPTION,
    )
    for layer in dict.fromkeys(r.get("layer") for r in rows):
        rs = [r for r in rows if r.get("layer") == layer]
        base = next((r.get("throughput") for r in rs if r.case == "cudnn_tc"), math.nan)
        for r in sorted(rs, key=lambda r: r.case != "cudnn_tc"):  # cuDNN first, then ours in the bench's order
            v = r.get("throughput")
            pct = 100 * v / base if base and math.isfinite(base) and math.isfinite(v) else math.nan
            t.add(
                layer,
                r.get("implementation"),
                r.get("kernels"),
                r.get("time"),
                v,
                pct,
                r.get("rel. error"),
                r.get("check"),
            )
    return t
