"""Memory per compiled variant (d22.e4, d33.e4), each variant compiled and first-run in a fresh Python process.

Measured in one process, the caching allocator already held what the first variant had used, so later variants
showed no growth (the 0.0 MiB rows of the first d33.e4 run). Here every variant gets its own interpreter, its own
CUDA context and an empty Inductor/Triton cache, and reports against a baseline taken after the context exists
(the context itself is not counted):

- `weights_mib`: tensors allocated by moving the model to the device;
- `peak_allocated_mib`: torch.cuda.max_memory_allocated() during compile and warm-up, above the weights;
- `retained_allocated_mib`: still allocated after warm-up (constants, CUDA-graph static inputs/outputs), above
  the weights;
- `peak_reserved_mib`: torch.cuda.max_memory_reserved() above what was reserved after the weights: the caching
  pool the variant made, CUDA-graph private pools included;
- `device_used_mib`: device-wide memory in use (cudaMemGetInfo total - free) after warm-up minus after the weights:
  the pool plus what lives outside the allocator (loaded kernel modules, cuDNN/cuBLAS workspaces and handles);
- `host_rss_delta_mib`: resident host memory of the process after warm-up minus before compiling (Inductor's
  compile workers are other processes and are not counted).

`compile_s` is the first call (compile + first run); `warmup_s` the three passes after it (a dynamic variant
first called at batch 1 compiles again for the other sizes: Dynamo specialises size 1).
The eager model is measured the same way, as the row the compiled variants are read against.

Run as `python -m workloads.engines.variant_memory '<json spec>'`; prints one JSON line.
"""

from __future__ import annotations

import importlib
import json
import os
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

MODES = ("default", "reduce-overhead")
KINDS = ("eager", "dynamic", "static")
DEFAULT_MEASURE = "workloads.engines.variant_memory:measure"
MIB = 2**20


class VariantSpecError(ValueError):
    """A bad variant description; the message names the field, the value and what is allowed."""


def variant_name(spec: dict[str, Any]) -> str:
    """eager | dynamic | static-b<bucket>, with `+cudagraphs` for mode reduce-overhead."""
    name = spec["kind"] if spec["kind"] != "static" else f"static-b{spec['bucket']}"
    return name + ("+cudagraphs" if spec.get("mode", "default") == "reduce-overhead" else "")


def check_spec(spec: dict[str, Any]) -> dict[str, Any]:
    """`spec` if it describes a variant this module can build, else VariantSpecError naming the field."""
    if spec.get("kind") not in KINDS:
        raise VariantSpecError(f"field kind = {spec.get('kind')!r}: allowed {', '.join(KINDS)}")
    if spec.get("device") not in ("cpu", "cuda"):
        raise VariantSpecError(f"field device = {spec.get('device')!r}: allowed cpu, cuda")
    mode = spec.get("mode", "default")
    if mode not in MODES:
        raise VariantSpecError(f"field mode = {mode!r}: allowed {', '.join(MODES)}")
    if mode == "reduce-overhead" and spec["kind"] == "eager":
        raise VariantSpecError("field mode = 'reduce-overhead': a compile mode; the eager variant takes 'default'")
    if mode == "reduce-overhead" and spec["device"] != "cuda":
        raise VariantSpecError("field mode = 'reduce-overhead': CUDA graphs need device cuda")
    if spec["kind"] == "static" and not (isinstance(spec.get("bucket"), int) and spec["bucket"] >= 1):
        raise VariantSpecError(f"field bucket = {spec.get('bucket')!r}: a static variant needs an int >= 1")
    batches = spec.get("batches") or []
    if spec["kind"] != "static" and not (batches and all(isinstance(b, int) and b >= 1 for b in batches)):
        raise VariantSpecError(f"field batches = {batches!r}: {spec['kind']} needs a non-empty list of ints >= 1")
    return spec


def variant_specs(
    device: str,
    quick: bool,
    batches: Sequence[int],
    buckets: Sequence[int],
    cudagraph_buckets: Sequence[int] = (),
) -> list[dict[str, Any]]:
    """Eager, the dynamic variant (warmed over every batch) and one static variant per bucket (warmed at its
    bucket), then static buckets again with CUDA graphs (mode reduce-overhead) where asked."""
    base = {"device": device, "quick": quick, "batches": list(batches)}
    specs = [{**base, "kind": "eager"}, {**base, "kind": "dynamic"}]
    specs += [{**base, "kind": "static", "bucket": b} for b in buckets]
    specs += [{**base, "kind": "static", "bucket": b, "mode": "reduce-overhead"} for b in cudagraph_buckets]
    return [check_spec(s) for s in specs]


def run_in_subprocess(
    spec: dict[str, Any],
    cache_dir: Path | None = None,
    timeout_s: float = 300,
    env: dict[str, str] | None = None,
) -> dict[str, Any]:
    """Measure one variant in a fresh interpreter (its own CUDA context and, with `cache_dir`, an empty
    Inductor/Triton cache there); returns the child's JSON result with `process_wall_s` added."""
    check_spec(spec)
    child_env = dict(os.environ)
    if cache_dir is not None:
        cache_dir.mkdir(parents=True, exist_ok=True)
        child_env.update(
            {"TORCHINDUCTOR_CACHE_DIR": str(cache_dir / "inductor"), "TRITON_CACHE_DIR": str(cache_dir / "triton")}
        )
    child_env.update(env or {})
    t0 = time.perf_counter()
    try:
        p = subprocess.run(
            [sys.executable, "-m", "workloads.engines.variant_memory", json.dumps(spec)],
            env=child_env,
            capture_output=True,
            text=True,
            timeout=timeout_s,
            check=False,
        )
    except subprocess.TimeoutExpired as err:
        raise RuntimeError(f"variant {variant_name(spec)}: no result within {timeout_s} s") from err
    lines = [ln for ln in p.stdout.splitlines() if ln.startswith("{")]
    if p.returncode != 0 or not lines:
        raise RuntimeError(f"variant {variant_name(spec)} failed (rc {p.returncode}): {p.stderr[-1500:]}")
    out = json.loads(lines[-1])
    out["process_wall_s"] = time.perf_counter() - t0
    return out


def measure_all(
    specs: Sequence[dict[str, Any]],
    workdir: Path,
    run: Callable[..., dict[str, Any]] = run_in_subprocess,
) -> list[dict[str, Any]]:
    """Each variant one after the other (device-wide readings must not overlap), each with its own cold cache."""
    return [run(s, cache_dir=workdir / "variant_cache" / variant_name(s)) for s in specs]


DEVICE_COLS = (
    "weights_mib",
    "peak_allocated_mib",
    "retained_allocated_mib",
    "peak_reserved_mib",
    "device_used_mib",
)


def memory_rows(results: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """Table rows in spec order; on CUDA each row also says how much more device memory it holds than eager."""
    if not results:
        raise ValueError("no variant results to tabulate")
    eager = next((r for r in results if r["variant"] == "eager"), None)
    rows = []
    for r in results:
        row: dict[str, Any] = {"variant": r["variant"], "compile_s": r["first_call_s"], "warmup_s": r["warmup_s"]}
        if r["device"] == "cuda":
            row.update({c: r[c] for c in DEVICE_COLS})
            if eager is not None:
                row["device_used_over_eager_mib"] = r["device_used_mib"] - eager["device_used_mib"]
        row["host_rss_delta_mib"] = r["host_rss_delta_mib"]
        rows.append(row)
    return rows


# --- the child process --------------------------------------------------------------------------------------------


def _rss_mib() -> float:
    """Resident set size of this process now (Linux /proc)."""
    with open("/proc/self/statm") as f:
        pages = int(f.read().split()[1])
    return pages * os.sysconf("SC_PAGE_SIZE") / MIB


def _snapshot(cuda: bool) -> dict[str, float]:
    if not cuda:
        return {"used": 0.0, "allocated": 0.0, "reserved": 0.0}
    import torch

    torch.cuda.synchronize()
    free, total = torch.cuda.mem_get_info()
    return {
        "used": (total - free) / MIB,
        "allocated": torch.cuda.memory_allocated() / MIB,
        "reserved": torch.cuda.memory_reserved() / MIB,
    }


def measure(spec: dict[str, Any]) -> dict[str, Any]:
    """Build the d22/d33 SmallCNN, compile the variant in `spec`, run it at the batches it serves (three passes,
    so CUDA graphs are recorded and replayed), and read the counters described in the module docstring."""
    check_spec(spec)
    import torch

    from workloads.engines.models import SmallCNN
    from workloads.engines.shapes import allow_many_variants
    from workloads.engines.timing import wall_once

    dev, cuda = spec["device"], spec["device"] == "cuda"
    if cuda:
        torch.cuda.init()
        torch.empty(1, device="cuda")  # the context and the allocator exist before the baseline
    base = _snapshot(cuda)
    torch.manual_seed(int(spec.get("seed", 0)))
    dt = torch.float16 if cuda else torch.float32
    model = (SmallCNN(8, 10) if spec["quick"] else SmallCNN(32, 1000)).to(dev, dt).eval().requires_grad_(False)
    size = 32 if spec["quick"] else 224
    weights = _snapshot(cuda)
    rss_before = _rss_mib()
    if cuda:
        torch.cuda.reset_peak_memory_stats()
    kind, mode = spec["kind"], spec.get("mode", "default")
    batches = [spec["bucket"]] if kind == "static" else list(spec["batches"])
    if kind == "eager":
        fn: Callable[[torch.Tensor], torch.Tensor] = model
    else:
        allow_many_variants()
        fn = torch.compile(model, dynamic=kind == "dynamic", mode=None if mode == "default" else mode)

    def x(b: int) -> torch.Tensor:
        return torch.randn(b, 3, size, size, device=dev, dtype=dt)

    with torch.no_grad():
        _, first_s = wall_once(lambda: fn(x(batches[0])), dev)

        def warm() -> None:
            for i in range(3):
                for b in batches[1:] if i == 0 else batches:
                    fn(x(b))

        _, warm_s = wall_once(warm, dev)
    after = _snapshot(cuda)
    out = {
        "variant": variant_name(spec),
        "device": dev,
        "batches_run": batches,
        "first_call_s": first_s,
        "warmup_s": warm_s,
        "host_rss_delta_mib": _rss_mib() - rss_before,
    }
    if cuda:
        out.update(
            {
                "weights_mib": weights["allocated"] - base["allocated"],
                "peak_allocated_mib": torch.cuda.max_memory_allocated() / MIB - weights["allocated"],
                "retained_allocated_mib": after["allocated"] - weights["allocated"],
                "peak_reserved_mib": torch.cuda.max_memory_reserved() / MIB - weights["reserved"],
                "device_used_mib": after["used"] - weights["used"],
                "baseline_used_mib": base["used"],
            }
        )
    return out


def _resolve(path: str) -> Callable[[dict[str, Any]], dict[str, Any]]:
    module, _, name = path.partition(":")
    return getattr(importlib.import_module(module), name)


if __name__ == "__main__":
    job = json.loads(sys.argv[1])
    fn = _resolve(os.environ.get("AILAB_VARIANT_MEASURE", DEFAULT_MEASURE))
    print(json.dumps(fn(job)), flush=True)
