"""cuDNN through torch: F.conv2d on bench_conv's 3x3 layers (TF32 off, best algorithm), rows in the harness format;
and, for the tensor-core convolution (bench_conv --fp16), F.conv2d on the same layers in fp16 channels_last (NHWC).

Run on a GPU host as `python3 -m workloads.kernels.cudnn N,C,K,H,W [...]` to print the JSON lines; the lab runner
(workloads/kernels/conv.py) calls `measure` in-process with the shapes read from bench_conv's own rows.
"""

from __future__ import annotations

import json
import math
import re
import sys
import warnings
from dataclasses import dataclass
from typing import Any

from workloads.kernels.jsonl import Record

IMPLEMENTATION = "cuDNN (torch conv2d)"
TABLE = "3x3 convolution (stride 1, pad 1, NCHW fp32): cuDNN"
# the same columns, in the same order, as bench_conv's "conv" rows, so both merge into one table
COLUMNS: list[tuple[str, str]] = [
    ("layer", ""),
    ("N", ""),
    ("C", ""),
    ("K", ""),
    ("H", ""),
    ("W", ""),
    ("implementation", ""),
    ("GEMM", ""),
    ("time", "ms"),
    ("throughput", "TFLOP/s"),
    ("workspace", "MiB"),
    ("rel. error", ""),
    ("reference", ""),
]

# the tensor-core comparison: bench_conv --fp16's "conv_tc" rows and these share table and columns
IMPLEMENTATION_TC = "cuDNN fp16 NHWC (torch conv2d, channels_last)"
TABLE_TC = "3x3 convolution on tensor cores (NHWC fp16 in, fp32 accumulate, fp16 out)"
TC_COLUMNS: list[tuple[str, str]] = [
    *COLUMNS[:7],  # layer, N, C, K, H, W, implementation
    ("kernels", ""),
    ("time", "ms"),
    ("throughput", "TFLOP/s"),
    ("rel. error", ""),
    ("tolerance", ""),
    ("check", ""),
    ("reference", ""),
]
TC_TOLERANCE = 2e-3  # bench_conv's TC_TOLERANCE: fp16 output rounding is ~3e-4 rms, a wrong tap or tile O(0.1)
TC_BATCH = 10  # calls per timed batch (bench_conv's TC_BATCH): back to back, so launch gaps do not count
SLEEP_CYCLES = 4_000_000  # ~2 ms of GPU spin before each cuDNN batch: more than Python needs to queue 10 conv2d calls


@dataclass(frozen=True)
class Shape:
    """A 3x3, stride 1, pad 1 layer: batch N, C input and K output channels, H x W images."""

    N: int
    C: int
    K: int
    H: int
    W: int

    @property
    def label(self) -> str:
        """Exactly bench_conv's layer label."""
        return f"N={self.N} C={self.C} K={self.K} {self.H}x{self.W}"

    @property
    def flops(self) -> float:
        """Direct-convolution FLOPs 2*N*K*C*9*H*W (the count every implementation's TFLOP/s uses)."""
        return 2.0 * self.N * self.K * self.C * 9 * self.H * self.W

    @classmethod
    def parse(cls, text: str) -> Shape:
        """'N,C,K,H,W' (positive integers) -> Shape; ValueError naming the value otherwise."""
        parts = text.split(",")
        if len(parts) != 5 or not all(p.strip().isdigit() and int(p) > 0 for p in parts):
            raise ValueError(f"shape {text!r}: expected N,C,K,H,W as five positive integers")
        return cls(*(int(p) for p in parts))


def shapes_of(records: list[Record]) -> list[Shape]:
    """Distinct layers of bench_conv rows, in first-seen order."""
    seen: dict[Shape, None] = {}
    for r in records:
        seen.setdefault(Shape(*(int(r.get(k)) for k in ("N", "C", "K", "H", "W"))), None)
    return list(seen)


def kernel_names(names: list[str]) -> str:
    """Short names of the CUDA kernels one conv2d call launched (templates and arguments cut)."""
    short = [re.sub(r"[<(].*", "", n).strip().removeprefix("void ")[:60] for n in names]
    return " + ".join(dict.fromkeys(s for s in short if s)) or "unknown"


def rel_err(got: Any, ref: Any) -> float:
    """||got - ref|| / ||ref|| in float64; non-finite output gives inf."""
    import torch

    got = got.double()
    if not torch.isfinite(got).all():
        return math.inf
    return float(torch.linalg.vector_norm(got - ref) / torch.linalg.vector_norm(ref).clamp_min(1e-300))


def measure(shapes: list[Shape], min_reps: int = 10, target_ms: float = 200.0) -> list[Record]:
    """Per shape: median CUDA-event time after warm-up, workspace, chosen kernels, error vs float64 CPU."""
    import torch
    import torch.nn.functional as F  # noqa: N812 - the usual torch spelling

    if not torch.cuda.is_available():
        raise RuntimeError("torch sees no CUDA device")
    # plain FP32 (as the CUDA kernels and cuBLAS here), and the fastest algorithm cuDNN finds for each shape
    torch.backends.cudnn.allow_tf32 = False
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.benchmark = True
    out = []
    for s in shapes:
        gen = torch.Generator(device="cuda").manual_seed(700)
        xbytes = s.N * s.C * s.H * s.W * 4
        sets = min(8, max(1, -(-(200 << 20) // xbytes)))  # rotate inputs: one pass > the 50 MB L2
        xs = [torch.rand(s.N, s.C, s.H, s.W, device="cuda", generator=gen) * 2 - 1 for _ in range(sets)]
        w = torch.rand(s.K, s.C, 3, 3, device="cuda", generator=gen) * 2 - 1
        for i in range(5):  # the first call runs cuDNN's algorithm search
            F.conv2d(xs[i % sets], w, padding=1)
        torch.cuda.synchronize()
        base = torch.cuda.memory_allocated()
        torch.cuda.reset_peak_memory_stats()
        y = F.conv2d(xs[0], w, padding=1)
        torch.cuda.synchronize()
        workspace = max(0, torch.cuda.max_memory_allocated() - base - y.numel() * 4)
        imgs = [0, s.N - 1] if s.N > 1 else [0]
        ref = F.conv2d(xs[0][imgs].double().cpu(), w.double().cpu(), padding=1)
        err = rel_err(y[imgs].cpu(), ref)
        times: list[float] = []
        a, b = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        while len(times) < min_reps or (sum(times) < target_ms and len(times) < 50):
            a.record()
            F.conv2d(xs[len(times) % sets], w, padding=1)
            b.record()
            b.synchronize()
            times.append(a.elapsed_time(b))
        ms = sorted(times)[len(times) // 2]
        row = [s.label, s.N, s.C, s.K, s.H, s.W, IMPLEMENTATION, _kernels(F, xs[0], w), ms, s.flops / ms / 1e9]
        row += [workspace / 2**20, err, "torch float64 CPU conv2d, images 0 and N-1" if s.N > 1 else "image 0"]
        out.append(Record("cudnn", TABLE, list(COLUMNS), row))
        del xs, w, y
        torch.cuda.empty_cache()
    return out


def measure_fp16_nhwc(shapes: list[Shape], min_reps: int = 10, target_ms: float = 200.0) -> list[Record]:
    """Per shape, cuDNN at the tensor-core kernel's precision and layout: fp16 channels_last input and filters (torch
    runs half convolutions with an fp32 compute type), cudnn.benchmark on; median CUDA-event time of batches of
    TC_BATCH back-to-back calls / TC_BATCH, each batch queued behind a GPU spin so that torch's per-call Python
    dispatch cannot open gaps between the kernels; error against float64 CPU conv2d of the same fp16 values."""
    import torch
    import torch.nn.functional as F  # noqa: N812 - the usual torch spelling

    if not torch.cuda.is_available():
        raise RuntimeError("torch sees no CUDA device")
    torch.backends.cudnn.benchmark = True
    cl = torch.channels_last
    sleep = getattr(torch.cuda, "_sleep", None)  # a GPU spin kernel (private torch API; without it, no head start)
    out = []
    for s in shapes:
        gen = torch.Generator(device="cuda").manual_seed(700)
        xbytes = s.N * s.C * s.H * s.W * 2
        sets = min(8, max(1, -(-(200 << 20) // xbytes)))  # as bench_conv: one pass over the inputs > the 50 MB L2
        xs = [
            (torch.rand(s.N, s.C, s.H, s.W, device="cuda", generator=gen) * 2 - 1).half().contiguous(memory_format=cl)
            for _ in range(sets)
        ]
        w = (torch.rand(s.K, s.C, 3, 3, device="cuda", generator=gen) * 2 - 1).half().contiguous(memory_format=cl)
        for i in range(5):  # the first call runs cuDNN's algorithm search
            F.conv2d(xs[i % sets], w, padding=1)
        torch.cuda.synchronize()
        y = F.conv2d(xs[0], w, padding=1)
        torch.cuda.synchronize()
        layout = "NHWC out" if y.is_contiguous(memory_format=cl) else "NCHW out"
        imgs = [0, s.N - 1] if s.N > 1 else [0]
        ref = F.conv2d(xs[0][imgs].double().cpu(), w.double().cpu(), padding=1)
        err = rel_err(y[imgs].cpu(), ref)
        times: list[float] = []
        a, b = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        while len(times) < min_reps or (sum(times) < target_ms and len(times) < 50):
            i0 = len(times) * TC_BATCH
            if sleep is not None:  # the GPU waits ~2 ms while Python queues the batch: its dispatch time is not timed
                sleep(SLEEP_CYCLES)
            a.record()
            for k in range(TC_BATCH):
                F.conv2d(xs[(i0 + k) % sets], w, padding=1)
            b.record()
            b.synchronize()
            times.append(a.elapsed_time(b))
        ms = sorted(times)[len(times) // 2] / TC_BATCH
        ok = math.isfinite(err) and err < TC_TOLERANCE
        row = [s.label, s.N, s.C, s.K, s.H, s.W, IMPLEMENTATION_TC, f"{_kernels(F, xs[0], w)} ({layout})", ms]
        row += [s.flops / ms / 1e9, err, TC_TOLERANCE, "pass" if ok else "FAIL"]
        row += ["torch float64 CPU conv2d of the fp16 inputs, " + ("images 0 and N-1" if s.N > 1 else "image 0")]
        out.append(Record("cudnn_tc", TABLE_TC, list(TC_COLUMNS), row))
        del xs, w, y
        torch.cuda.empty_cache()
    return out


def _kernels(F: Any, x: Any, w: Any) -> str:  # noqa: N803 - torch.nn.functional
    """Which kernels cuDNN ran for this shape (torch profiler); 'unknown' where the profiler is unavailable."""
    try:
        import torch
        from torch.profiler import ProfilerActivity, profile

        with warnings.catch_warnings():  # torch warns that events are per cycle: one cycle is all we record
            warnings.simplefilter("ignore")
            with profile(activities=[ProfilerActivity.CUDA]) as prof:
                F.conv2d(x, w, padding=1)
                torch.cuda.synchronize()
        return kernel_names([e.name for e in prof.events() if str(e.device_type).endswith("CUDA")])
    except Exception as exc:  # noqa: BLE001 - a missing kernel name must not lose the timing
        return f"unknown ({type(exc).__name__})"


def to_json(r: Record) -> str:
    """One harness JSON line (cuda/include/harness.cuh's format; non-finite numbers as null)."""
    row = [None if isinstance(v, float) and not math.isfinite(v) else v for v in r.row]
    return json.dumps({"case": r.case, "table": r.table, "columns": [list(c) for c in r.columns], "row": row})


def main(argv: list[str]) -> int:
    fp16 = "--fp16" in argv
    argv = [a for a in argv if a != "--fp16"]
    if not argv:
        print("usage: python3 -m workloads.kernels.cudnn [--fp16] N,C,K,H,W [N,C,K,H,W ...]", file=sys.stderr)
        return 2
    try:
        shapes = [Shape.parse(a) for a in argv]
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    for r in (measure_fp16_nhwc if fp16 else measure)(shapes):
        print(to_json(r), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
