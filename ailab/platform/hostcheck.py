"""Host prerequisites of the kind target with GPUs (the nvkind way), checked before any resource is created.

The probe is injectable: tests pass a fake file system instead of this machine's.
"""

from __future__ import annotations

import json
import re
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from ailab.platform.config import ConfigError

DOCKER_DAEMON = "/etc/docker/daemon.json"
CONTAINERD_CONFIG = "/etc/containerd/config.toml"
TOOLKIT_CONFIG = "/etc/nvidia-container-runtime/config.toml"


def _read(path: str) -> str | None:
    try:
        return Path(path).read_text()
    except OSError:
        return None


@dataclass(frozen=True)
class HostProbe:
    """How the check sees the host: a `which` and a file reader (None when the file is absent)."""

    which: Callable[[str], str | None] = shutil.which
    read_text: Callable[[str], str | None] = _read


def _docker_nvidia_default(text: str | None) -> bool:
    try:
        conf = json.loads(text or "")
    except ValueError:
        return False
    return "nvidia" in (conf.get("runtimes") or {}) and conf.get("default-runtime") == "nvidia"


def gpu_runtime_problems(probe: HostProbe) -> list[str]:
    """What is missing for kind nodes to see GPUs; empty when the host is ready."""
    problems = []
    if probe.which("nvidia-ctk") is None:
        problems.append("nvidia-ctk not on PATH (install nvidia-container-toolkit)")
    docker_ok = _docker_nvidia_default(probe.read_text(DOCKER_DAEMON))
    containerd = probe.read_text(CONTAINERD_CONFIG) or ""
    containerd_ok = re.search(r"runtimes\.[\"']?nvidia[\"']?\]", containerd) is not None
    if not (docker_ok or containerd_ok):
        problems.append(
            f"no NVIDIA container runtime: {DOCKER_DAEMON} needs runtimes.nvidia and default-runtime nvidia "
            f"(`sudo nvidia-ctk runtime configure --runtime=docker --set-as-default`), or {CONTAINERD_CONFIG} "
            "a runtimes.nvidia section"
        )
    toolkit = probe.read_text(TOOLKIT_CONFIG) or ""
    if not re.search(r"^\s*accept-nvidia-visible-devices-as-volume-mounts\s*=\s*true", toolkit, re.M):
        problems.append(
            f"{TOOLKIT_CONFIG}: accept-nvidia-visible-devices-as-volume-mounts = true is required (`sudo nvidia-ctk "
            "config --set accept-nvidia-visible-devices-as-volume-mounts=true --in-place`)"
        )
    return problems


def check_kind_gpu(source: str, probe: HostProbe) -> None:
    """ConfigError naming ailab:cluster.gpu when target kind asks for GPUs the host cannot pass through."""
    problems = gpu_runtime_problems(probe)
    if problems:
        raise ConfigError(
            f"{source}: ailab:cluster.gpu = True with target kind: this host cannot pass GPUs to kind nodes: "
            + "; ".join(problems)
            + " (or set ailab:cluster.gpu false, or use target k3s/existing)"
        )


def default_probe() -> HostProbe:
    """The probe pulumi/__main__.py uses: this machine (tests replace this function)."""
    return HostProbe()
