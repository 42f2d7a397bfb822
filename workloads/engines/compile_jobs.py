"""Compiler-search experiments, each job in a fresh Python process (cuBLAS workspace and Inductor caches are
per process): the stand-ins for TensorRT's workspace limit, tactic sources and timing/engine cache.

- `workspace`: eager GEMMs with cuBLAS/cuBLASLt workspace capped by CUBLAS_WORKSPACE_CONFIG and
  CUBLASLT_WORKSPACE_SIZE; the kernel cuBLAS picked (the "tactic") is read from the profiler.
- `compile`: torch.compile in a mode, with a GEMM backend set (ATEN, TRITON or both) and an Inductor/Triton cache
  directory that is empty (cold) or filled by an earlier job (warm): compile time, latency, kernels used.

Run as `python -m workloads.engines.compile_jobs '<json job>'`; prints one JSON line.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

FFN_SHAPE = {"tokens": 4096, "hidden": 1024, "ffn": 4096}
QUICK_SHAPE = {"tokens": 64, "hidden": 32, "ffn": 64}


def run_job(job: dict[str, Any], timeout_s: float = 300) -> dict[str, Any]:
    """Run one job in a fresh interpreter with its environment; returns its JSON result (or the error)."""
    env = dict(os.environ)
    env.update({k: str(v) for k, v in job.get("env", {}).items()})
    t0 = time.perf_counter()
    p = subprocess.run(
        [sys.executable, "-m", "workloads.engines.compile_jobs", json.dumps(job)],
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout_s,
        check=False,
    )
    wall = time.perf_counter() - t0
    lines = [ln for ln in p.stdout.splitlines() if ln.startswith("{")]
    if p.returncode != 0 or not lines:
        raise RuntimeError(f"job {job.get('kind')} failed (rc {p.returncode}): {p.stderr[-1500:]}")
    out = json.loads(lines[-1])
    out["process_wall_s"] = wall
    return out


def _ffn(shape: dict[str, int], device: str):
    import torch
    from torch import nn

    class FFN(nn.Module):
        """A transformer feed-forward block: LayerNorm(x + W2·gelu(W1·x)), in FP16 on CUDA."""

        def __init__(self) -> None:
            super().__init__()
            self.w1 = nn.Linear(shape["hidden"], shape["ffn"])
            self.w2 = nn.Linear(shape["ffn"], shape["hidden"])
            self.norm = nn.LayerNorm(shape["hidden"])

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.norm(x + self.w2(torch.nn.functional.gelu(self.w1(x))))

    torch.manual_seed(0)
    dt = torch.float16 if device == "cuda" else torch.float32
    model = FFN().to(device, dt).eval()
    x = torch.randn(shape["tokens"], shape["hidden"], device=device, dtype=dt)
    return model, x


def _kernels(fn: Any, device: str) -> list[str]:
    import torch
    from torch.profiler import ProfilerActivity, profile

    acts = [ProfilerActivity.CUDA] if device == "cuda" else [ProfilerActivity.CPU]
    with profile(activities=acts) as prof:
        fn()
        if device == "cuda":
            torch.cuda.synchronize()
    kind = "cuda" if device == "cuda" else "cpu"
    names = [e.key for e in prof.key_averages() if (e.device_type.name.lower() == kind)]
    return sorted({n[:90] for n in names if not n.startswith("ProfilerStep")})[:12]


def _main(job: dict[str, Any]) -> dict[str, Any]:
    import torch

    from workloads.engines.timing import time_calls, wall_once

    device = job["device"]
    shape = QUICK_SHAPE if job.get("quick") else FFN_SHAPE
    model, x = _ffn(shape, device)
    iters = int(job.get("iters", 50))
    if job["kind"] == "workspace":
        with torch.no_grad():
            lat = time_calls(lambda: model(x), device, warmup=5, iters=iters)
            kernels = _kernels(lambda: model(x), device)
        return {"p50_ms": lat.p50_ms, "p95_ms": lat.p95_ms, "kernels": kernels}
    if job["kind"] == "compile":
        import torch._inductor.config as icfg

        if job.get("backends"):
            icfg.max_autotune_gemm_backends = job["backends"]
        fn = torch.compile(model, mode=None if job["mode"] == "default" else job["mode"])
        with torch.no_grad():
            _, first_s = wall_once(lambda: fn(x), device)
            lat = time_calls(lambda: fn(x), device, warmup=3, iters=iters)
            eager = time_calls(lambda: model(x), device, warmup=3, iters=iters)
            err = float((fn(x).float() - model(x).float()).abs().max())
            kernels = _kernels(lambda: fn(x), device)
        return {
            "first_call_s": first_s,
            "p50_ms": lat.p50_ms,
            "p95_ms": lat.p95_ms,
            "eager_p50_ms": eager.p50_ms,
            "max_abs_err_vs_eager": err,
            "kernels": kernels,
        }
    raise ValueError(f"field kind = {job['kind']!r}: allowed workspace, compile")


def workspace_env(mib: int) -> dict[str, str]:
    """Environment that caps cuBLAS and cuBLASLt workspace at `mib` MiB (read when the handle is created)."""
    if mib < 1:
        raise ValueError(f"field workspace_mib = {mib}: must be >= 1")
    return {"CUBLAS_WORKSPACE_CONFIG": f":{mib * 1024}:1", "CUBLASLT_WORKSPACE_SIZE": str(mib * 1024)}


def cache_env(cache_dir: Path) -> dict[str, str]:
    """Inductor and Triton caches under `cache_dir` (empty = cold start)."""
    return {"TORCHINDUCTOR_CACHE_DIR": str(cache_dir / "inductor"), "TRITON_CACHE_DIR": str(cache_dir / "triton")}


if __name__ == "__main__":
    print(json.dumps(_main(json.loads(sys.argv[1]))), flush=True)
