"""The builder's search, answered with cuBLAS and Inductor: workspace limit vs kernel choice and latency
(d04.e2, d15.e1), GEMM backends enabled/disabled (d15.e2), compile cache cold vs warm (d15.e3)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from ailab.contract import Context, Output, Params


class WorkspaceParams(Params):
    workspaces_mib: list[int] = Field([64, 256, 1024], min_length=1)
    iters: int = Field(100, gt=0)


class BackendParams(Params):
    backends: list[Literal["ATEN", "TRITON", "ATEN,TRITON"]] = Field(["ATEN", "TRITON", "ATEN,TRITON"], min_length=1)
    mode: Literal["max-autotune", "max-autotune-no-cudagraphs"] = "max-autotune-no-cudagraphs"
    iters: int = Field(100, gt=0)


class CacheParams(Params):
    modes: list[Literal["default", "max-autotune", "max-autotune-no-cudagraphs"]] = Field(
        ["default", "max-autotune-no-cudagraphs"], min_length=1
    )
    iters: int = Field(50, gt=0)


def _sub(used: str):
    from workloads.engines.tables import tensorrt_substitute

    return tensorrt_substitute(used)


def workspace_limit(ctx: Context, p: WorkspaceParams) -> Output:
    """FFN block (FP16 on CUDA) in eager mode with cuBLAS/cuBLASLt workspace capped; one fresh process per limit."""
    from workloads.engines.compile_jobs import run_job, workspace_env
    from workloads.engines.tables import table

    rows = []
    for mib in p.workspaces_mib:
        r = run_job(
            {"kind": "workspace", "device": ctx.device, "quick": ctx.quick, "iters": p.iters, "env": workspace_env(mib)}
        )
        rows.append(
            {
                "workspace_mib": mib,
                "p50_ms": r["p50_ms"],
                "p95_ms": r["p95_ms"],
                "kernels": "; ".join(k for k in r["kernels"] if "gemm" in k.lower() or "sm90" in k or "cutlass" in k)
                or "; ".join(r["kernels"][:4]),
            }
        )
    ref = rows[-1]["p50_ms"]
    for r in rows:
        r["vs_largest"] = round(ref / r["p50_ms"], 3)
    out = Output(
        substitute=_sub(
            "cuBLAS/cuBLASLt workspace limit (CUBLAS_WORKSPACE_CONFIG, CUBLASLT_WORKSPACE_SIZE); "
            "GEMM kernel names from the PyTorch profiler stand for TensorRT's tactics"
        )
    )
    out.tables.append(
        table(
            "workspace_limit",
            rows,
            caption="Transformer FFN block, 4096 tokens x 1024 -> 4096 -> 1024, "
            "FP16; vs_largest = p50 at the largest limit / p50",
        )
    )
    return out


def gemm_backends(ctx: Context, p: BackendParams) -> Output:
    """torch.compile max-autotune with only ATen (cuBLAS), only Triton, or both GEMM backends enabled."""
    from workloads.engines.compile_jobs import cache_env, run_job
    from workloads.engines.tables import table

    rows = []
    for b in p.backends:
        r = run_job(
            {
                "kind": "compile",
                "device": ctx.device,
                "quick": ctx.quick,
                "iters": p.iters,
                "mode": p.mode,
                "backends": b,
                "env": cache_env(ctx.workdir / f"cache-{b.replace(',', '_')}"),
            },
            timeout_s=500,
        )
        rows.append(
            {
                "gemm_backends": b,
                "compile_s": r["first_call_s"],
                "p50_ms": r["p50_ms"],
                "p95_ms": r["p95_ms"],
                "eager_p50_ms": r["eager_p50_ms"],
                "max_abs_err_vs_eager": r["max_abs_err_vs_eager"],
                "kernels": "; ".join(r["kernels"][:6]),
            }
        )
    for r in rows:
        r["speedup_vs_eager"] = round(r["eager_p50_ms"] / r["p50_ms"], 3)
    out = Output(substitute=_sub(f"Inductor {p.mode} with max_autotune_gemm_backends restricted (tactic sources)"))
    out.tables.append(
        table("gemm_backends", rows, caption="FFN block FP16; each row a fresh process with an empty cache")
    )
    return out


def compile_cache(ctx: Context, p: CacheParams) -> Output:
    """Compile time with an empty Inductor/Triton cache (cold) and with the cache the cold run filled (warm)."""
    from workloads.engines.compile_jobs import cache_env, run_job
    from workloads.engines.tables import table

    rows = []
    for mode in p.modes:
        env = cache_env(ctx.workdir / f"cache-{mode}")
        for state in ("cold", "warm"):
            r = run_job(
                {
                    "kind": "compile",
                    "device": ctx.device,
                    "quick": ctx.quick,
                    "iters": p.iters,
                    "mode": mode,
                    "env": env,
                },
                timeout_s=500,
            )
            rows.append(
                {
                    "mode": mode,
                    "cache": state,
                    "compile_s": r["first_call_s"],
                    "process_wall_s": r["process_wall_s"],
                    "p50_ms": r["p50_ms"],
                    "eager_p50_ms": r["eager_p50_ms"],
                }
            )
    for r in rows:
        cold = next(x for x in rows if x["mode"] == r["mode"] and x["cache"] == "cold")
        r["cold_over_this"] = round(cold["compile_s"] / r["compile_s"], 2)
    out = Output(
        substitute=_sub(
            "Inductor FX-graph and autotune caches + Triton kernel cache on disk (TensorRT's "
            "timing cache / engine cache)"
        )
    )
    out.tables.append(
        table(
            "compile_cache",
            rows,
            caption="FFN block FP16; compile_s = first call (trace + compile "
            "or cache load); each row a fresh process, warm rows reuse the cold row's directory",
        )
    )
    return out
