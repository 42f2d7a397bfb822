"""What this host can do for experiments: the needs check and `lab doctor` (probes live in ailab.contract.probes)."""

from __future__ import annotations

import os
import shutil
import sys
from dataclasses import dataclass

from ailab.contract.probes import (
    Gpu,
    cluster_context,
    container_engine,
    cpu_model,
    gpus,
    has_tensorrt,
    tritonserver_binary,
    venv_bin,
)
from ailab.contract.probes import run as _run
from ailab.curriculum.schema import Need

__all__ = [
    "Check",
    "Gpu",
    "cluster_context",
    "container_engine",
    "cpu_model",
    "doctor",
    "gpus",
    "has_tensorrt",
    "local_platform_ready",
    "tritonserver_binary",
    "unmet",
    "venv_bin",
]


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    detail: str
    fix: str = ""


def local_platform_ready() -> tuple[bool, str]:
    missing = []
    if tritonserver_binary() is None:
        missing.append("tritonserver (pip install nvidia-pytriton==0.7.0)")
    for b in ("prometheus", "prometheus-alertmanager", "redis-server"):
        if not shutil.which(b):
            missing.append(b)
    return (
        not missing,
        "missing: " + ", ".join(missing) if missing else "tritonserver, prometheus, alertmanager, redis",
    )


def unmet(needs: list[Need], device: str) -> list[str]:
    """Reasons why `needs` are not met on this host for `device` ('cpu' or 'cuda'); empty when runnable."""
    reasons = []
    n_gpu = len(gpus())
    if Need.gpu in needs and (n_gpu == 0 or device != "cuda"):
        reasons.append("needs a GPU (none found)" if n_gpu == 0 else "needs a GPU (run with --device cuda)")
    if Need.multi_gpu in needs and n_gpu < 2:
        reasons.append(f"needs 2 or more GPUs (found {n_gpu})")
    if Need.tensorrt in needs and not has_tensorrt():
        reasons.append("needs TensorRT (python package 'tensorrt' not importable)")
    if Need.cluster in needs and cluster_context() is None:
        reasons.append("needs a Kubernetes cluster (no reachable kubectl context; see `pulumi up -s weekNN`)")
    if Need.container_engine in needs and container_engine() is None:
        reasons.append("needs a container engine (podman or docker that can run containers)")
    if Need.local_platform in needs:
        ok, detail = local_platform_ready()
        if not ok:
            reasons.append(f"needs the local platform ({detail}; run `make setup`)")
    return reasons


def doctor() -> list[Check]:
    """Every check `lab doctor` prints, each ok or missing with how to fix it."""
    checks = [Check("python", sys.version_info >= (3, 11), sys.version.split()[0], "use Python 3.11+")]
    checks.append(Check("cpu", True, f"{cpu_model()} ({os.cpu_count()} cores)"))
    g = gpus()
    checks.append(
        Check(
            "gpu",
            bool(g),
            "; ".join(f"{x.index}: {x.name} {x.memory_mib} MiB" for x in g) or "none",
            "needs an NVIDIA GPU and driver (ansible role nvidia_driver)",
        )
    )
    checks.append(
        Check("driver", bool(g), g[0].driver if g else "none", "install the NVIDIA driver (role nvidia_driver)")
    )
    rc, out = _run(["nvcc", "--version"]) if shutil.which("nvcc") else (127, "")
    checks.append(
        Check(
            "nvcc",
            rc == 0,
            out.splitlines()[-1] if rc == 0 and out else "missing",
            "install the CUDA toolkit (role cuda_toolkit)",
        )
    )
    try:
        import torch

        cuda = f"torch {torch.__version__}, CUDA {torch.version.cuda or 'none (CPU build)'}"
        checks.append(
            Check("cuda runtime", torch.cuda.is_available(), cuda, "GPU experiments need torch with CUDA on a GPU host")
        )
    except ImportError:
        checks.append(Check("cuda runtime", False, "torch missing", "make setup"))
    checks.append(
        Check(
            "tensorrt",
            has_tensorrt(),
            "importable" if has_tensorrt() else "missing",
            "install TensorRT from NVIDIA's repository (role tensorrt); not available on this machine",
        )
    )
    ts = tritonserver_binary()
    checks.append(
        Check(
            "tritonserver",
            ts is not None,
            str(ts) if ts else "missing",
            "pip install nvidia-pytriton==0.7.0 (make setup)",
        )
    )
    for b, pkg in (
        ("prometheus", "prometheus"),
        ("prometheus-alertmanager", "prometheus-alertmanager"),
        ("promtool", "prometheus"),
        ("amtool", "prometheus-alertmanager"),
        ("redis-server", "redis-server"),
    ):
        p = shutil.which(b)
        checks.append(Check(b, p is not None, p or "missing", f"apt-get install -y {pkg}"))
    eng = container_engine()
    checks.append(
        Check(
            "container engine",
            eng is not None,
            eng or "missing",
            "apt-get install -y podman runc (see README: containers.conf)",
        )
    )
    ctx = cluster_context()
    checks.append(
        Check(
            "kubectl context",
            ctx is not None,
            ctx or "none reachable",
            "create a cluster: `pulumi up -s week01` (kind/k3s) or set KUBECONFIG",
        )
    )
    p = shutil.which("pulumi")
    checks.append(
        Check(
            "pulumi CLI",
            p is not None,
            p or "missing",
            "install the Pulumi CLI (https://www.pulumi.com/docs/install/); not available on this machine",
        )
    )
    return checks
