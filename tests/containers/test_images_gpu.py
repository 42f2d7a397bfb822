"""Day 1 on a GPU host: `torch.cuda.is_available()` inside the inference image built on the PyTorch CUDA base.

Needs an NVIDIA GPU, the NVIDIA container toolkit (CDI for podman, --gpus for docker) and the base image
pytorch/pytorch:2.2.0-cuda12.1-cudnn8-runtime; skipped where any is missing (always on the CPU machines)."""

from __future__ import annotations

import json
import shutil

import pytest

from ailab import host
from workloads.images import build, catalog

pytestmark = [pytest.mark.gpu, pytest.mark.containers]


def test_torch_sees_the_gpu_inside_the_container() -> None:
    if not host.gpus():
        pytest.skip("needs an NVIDIA GPU (none found)")
    eng = build.engine()
    if eng == "podman" and not shutil.which("nvidia-ctk"):
        pytest.skip("needs the NVIDIA container toolkit (nvidia-ctk cdi generate) for podman --device nvidia.com/gpu")
    spec = catalog.IMAGES["inference"]
    # the CUDA torch comes from the base image; the venv sees it through --system-site-packages
    r = build.build_image("inference", base=spec.gpu_base, args={"WITH_TORCH": "0"}, eng=eng)
    gpu_flags = ["--device", "nvidia.com/gpu=all"] if eng == "podman" else ["--gpus", "all"]
    p = build.run([eng, "run", "--rm", *gpu_flags, r.ref, "info"])
    assert p.returncode == 0, p.stderr
    info = json.loads(p.stdout)
    assert info["torch_cuda_available"] is True
    assert info["torch_cuda_devices"] >= 1
