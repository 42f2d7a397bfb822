"""What this host can do: probes used by `lab doctor` and by the runner's needs check."""

from __future__ import annotations

import importlib.util
import os
import platform
import shutil
import subprocess
import sys
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from ailab.curriculum.schema import Need


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    detail: str
    fix: str = ""


def _run(cmd: list[str], timeout: float = 10) -> tuple[int, str]:
    try:
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return 127, str(exc)
    return p.returncode, (p.stdout + p.stderr).strip()


def venv_bin(name: str) -> str | None:
    """A binary from the running interpreter's environment first, then PATH."""
    cand = Path(sys.executable).parent / name
    return str(cand) if cand.exists() else shutil.which(name)


@dataclass(frozen=True)
class Gpu:
    index: int
    name: str
    memory_mib: int
    driver: str


@lru_cache(maxsize=1)
def gpus() -> tuple[Gpu, ...]:
    """GPUs seen through NVML, else nvidia-smi; empty when there is none (or AILAB_HIDE_GPU=1)."""
    if os.environ.get("AILAB_HIDE_GPU") == "1":
        return ()
    try:
        import pynvml  # nvidia-ml-py

        pynvml.nvmlInit()
        try:
            driver = pynvml.nvmlSystemGetDriverVersion()
            out = []
            for i in range(pynvml.nvmlDeviceGetCount()):
                h = pynvml.nvmlDeviceGetHandleByIndex(i)
                name = pynvml.nvmlDeviceGetName(h)
                mem = pynvml.nvmlDeviceGetMemoryInfo(h).total // (1 << 20)
                out.append(
                    Gpu(
                        i,
                        name if isinstance(name, str) else name.decode(),
                        int(mem),
                        driver if isinstance(driver, str) else driver.decode(),
                    )
                )
            return tuple(out)
        finally:
            pynvml.nvmlShutdown()
    except Exception:  # noqa: BLE001 - NVML absent or no driver: fall back to nvidia-smi
        pass
    if not shutil.which("nvidia-smi"):
        return ()
    rc, out = _run(
        ["nvidia-smi", "--query-gpu=index,name,memory.total,driver_version", "--format=csv,noheader,nounits"]
    )
    if rc != 0:
        return ()
    found = []
    for line in out.splitlines():
        parts = [p.strip() for p in line.split(",")]
        if len(parts) == 4 and parts[0].isdigit():
            found.append(Gpu(int(parts[0]), parts[1], int(float(parts[2])), parts[3]))
    return tuple(found)


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def tritonserver_binary() -> Path | None:
    """The tritonserver shipped by nvidia-pytriton (python backend only), or one on PATH."""
    spec = importlib.util.find_spec("pytriton")
    if spec and spec.submodule_search_locations:
        cand = Path(next(iter(spec.submodule_search_locations))) / "tritonserver" / "bin" / "tritonserver"
        if cand.exists():
            return cand
    found = shutil.which("tritonserver")
    return Path(found) if found else None


def has_tensorrt() -> bool:
    return importlib.util.find_spec("tensorrt") is not None


@lru_cache(maxsize=1)
def container_engine() -> str | None:
    """'podman' or 'docker' when one can actually run containers here, else None."""
    for engine in ("podman", "docker"):
        if shutil.which(engine):
            rc, _ = _run([engine, "info"], timeout=20)
            if rc == 0:
                return engine
    return None


@lru_cache(maxsize=1)
def cluster_context() -> str | None:
    """The current kubectl context when its API server answers, else None."""
    if not shutil.which("kubectl"):
        return None
    rc, ctx = _run(["kubectl", "config", "current-context"], timeout=5)
    if rc != 0 or not ctx:
        return None
    rc, _ = _run(["kubectl", "get", "--raw", "/readyz", "--request-timeout=3s"], timeout=6)
    return ctx if rc == 0 else None


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
