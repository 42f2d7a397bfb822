"""Provenance recorded with every result: code version, host, hardware and library versions."""

from __future__ import annotations

import getpass
import importlib.metadata
import platform
import socket
import subprocess
import sys
from typing import Any

from ailab import host
from ailab.contract.paths import REPO_ROOT

KEY_PACKAGES = (
    "torch",
    "onnx",
    "onnxruntime",
    "numpy",
    "scikit-learn",
    "tritonclient",
    "nvidia-pytriton",
    "prometheus-client",
    "pulumi",
    "pulumi-kubernetes",
    "cupy-cuda13x",
    "cupy-cuda12x",
    "nvidia-ml-py",
)


def _git(*args: str) -> str:
    try:
        return subprocess.run(
            ["git", *args], cwd=REPO_ROOT, capture_output=True, text=True, timeout=10, check=False
        ).stdout.strip()
    except OSError:
        return ""


def git_state() -> dict[str, Any]:
    commit = _git("rev-parse", "HEAD") or "unknown"
    dirty = bool(_git("status", "--porcelain", "--untracked-files=no"))
    return {"commit": commit, "dirty": dirty}


def package_versions() -> dict[str, str]:
    out = {}
    for name in KEY_PACKAGES:
        try:
            out[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            continue
    return out


def collect() -> dict[str, Any]:
    """Everything about where and with what a result was produced (no timestamps: the runner adds them)."""
    gpus = host.gpus()
    return {
        "git": git_state(),
        "host": socket.gethostname(),
        "user": getpass.getuser(),
        "os": platform.platform(),
        "cpu": host.cpu_model(),
        "cpu_count": __import__("os").cpu_count(),
        "gpus": [{"index": g.index, "name": g.name, "memory_mib": g.memory_mib} for g in gpus],
        "driver": gpus[0].driver if gpus else None,
        "python": sys.version.split()[0],
        "packages": package_versions(),
    }


def host_class(prov: dict[str, Any], device: str, multi_gpu: bool = False) -> str:
    """A short tag for file names: 'cpu' or the GPU model (e.g. 'h100'), so GPU runs never overwrite CPU ones;
    multi-GPU experiments add the GPU count ('h100x4'), so 2-, 4- and 8-GPU runs sit side by side."""
    if device != "cuda" or not prov.get("gpus"):
        return "cpu"
    name = prov["gpus"][0]["name"].lower()
    tag = "gpu"
    for token in name.replace("nvidia", "").split():
        if any(ch.isdigit() for ch in token):
            tag = "".join(ch for ch in token if ch.isalnum())
            break
    return f"{tag}x{len(prov['gpus'])}" if multi_gpu and len(prov["gpus"]) > 1 else tag
