"""What this host has: GPUs, CPU, binaries, TensorRT, a container engine, a cluster context.

Plain probes with no opinion about experiments: the control plane (`lab doctor`, the needs check) and runners
use the same functions.
"""

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


def run(cmd: list[str], timeout: float = 10) -> tuple[int, str]:
    """(exit code, stdout+stderr stripped); 127 when the command cannot start or times out."""
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
    rc, out = run(["nvidia-smi", "--query-gpu=index,name,memory.total,driver_version", "--format=csv,noheader,nounits"])
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
            rc, _ = run([engine, "info"], timeout=20)
            if rc == 0:
                return engine
    return None


@lru_cache(maxsize=1)
def cluster_context() -> str | None:
    """The current kubectl context when its API server answers, else None."""
    if not shutil.which("kubectl"):
        return None
    rc, ctx = run(["kubectl", "config", "current-context"], timeout=5)
    if rc != 0 or not ctx:
        return None
    rc, _ = run(["kubectl", "get", "--raw", "/readyz", "--request-timeout=3s"], timeout=6)
    return ctx if rc == 0 else None
