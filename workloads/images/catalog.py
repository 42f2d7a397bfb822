"""The one place that names the lab's workload images and their tag.

Imported by the Pulumi stacks, the cluster Jobs, `lab images build` and the tests: change a name or the
tag here and every user follows. `ref(name)` gives the full reference `REGISTRY/ailab-<name>:TAG`.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

# Bump on every change to a Dockerfile or to what goes into an image; the cluster pulls by this tag.
TAG = "0.1.0"

# Where the images live. Here they are built locally and never pushed ("localhost/..." is podman's
# local namespace); a real lab sets AILAB_IMAGE_REGISTRY (e.g. ghcr.io/<org>) and pushes there.
REGISTRY = os.environ.get("AILAB_IMAGE_REGISTRY", "localhost")

# Base images. For real users: NVIDIA/PyTorch CUDA images. Here: Debian bookworm images built from
# Debian packages with mmdebstrap (scripts/build-base-image.sh), because no image can be pulled.
CUDA_RUNTIME_BASE = "pytorch/pytorch:2.2.0-cuda12.1-cudnn8-runtime"  # the curriculum's Day-1 base
# nvcc, cuBLAS and CMake >= 3.24 from apt (Ubuntu 24.04); the kernels target sm_90, which CUDA 12 compiles
CUDA_DEVEL_BASE = "nvidia/cuda:12.6.3-devel-ubuntu24.04"
CUDA_RUNTIME_ONLY_BASE = "nvidia/cuda:12.6.3-runtime-ubuntu24.04"  # runtime stage of the CUDA kernels image
SLIM_BASE = "debian:bookworm-slim"  # for images that carry only files (the Triton repository init container)
LOCAL_BASE = "localhost/ailab-debian:bookworm"  # python3 3.11 + pip/venv, see workloads/images/build.py


@dataclass(frozen=True)
class ImageSpec:
    """One workload image: its Dockerfile (relative to workloads/images/) and how it may be built."""

    name: str  # short name, the key in IMAGES
    dockerfile: str
    description: str
    gpu_base: str  # BASE_IMAGE on real GPU hosts / in a real registry build
    local_base: str | None  # BASE_IMAGE on a CPU-only host; None: cannot be built without a CUDA base
    build_args: dict[str, str] = field(default_factory=dict)  # defaults; `lab images build --arg` overrides
    # named build-arg sets tagged TAG-<variant>, e.g. "onnx": {"WITH_TORCH": "0"} -> ailab-inference:0.1.0-onnx
    variants: dict[str, dict[str, str]] = field(default_factory=dict)

    @property
    def repository(self) -> str:
        """Image repository without the tag, e.g. localhost/ailab-inference."""
        return f"{REGISTRY}/ailab-{self.name}"

    @property
    def ref(self) -> str:
        """Full image reference with the tag, e.g. localhost/ailab-inference:0.1.0."""
        return f"{self.repository}:{TAG}"

    def ref_of(self, variant: str | None) -> str:
        """Reference of a variant (None: the default build), e.g. localhost/ailab-inference:0.1.0-onnx."""
        if variant is None:
            return self.ref
        if variant not in self.variants:
            allowed = ", ".join(self.variants) or "none"
            raise KeyError(f"variant {variant!r} of image {self.name}: unknown (allowed: {allowed})")
        return f"{self.ref}-{variant}"


IMAGES: dict[str, ImageSpec] = {
    spec.name: spec
    for spec in (
        ImageSpec(
            name="inference",
            dockerfile="inference/Dockerfile",
            description="ONNX Runtime (+ PyTorch unless WITH_TORCH=0) and the lab's workloads package; "
            "runs the ONNX inference and the benchmarks",
            gpu_base=CUDA_RUNTIME_BASE,
            local_base=LOCAL_BASE,
            build_args={"WITH_TORCH": "1"},
            # CI and CPU-only clusters: ONNX Runtime without torch (the torch wheel dominates build time and size)
            variants={"onnx": {"WITH_TORCH": "0"}},
        ),
        ImageSpec(
            name="triton-models",
            dockerfile="triton-models/Dockerfile",
            description="init container carrying the generated Triton model repositories; copies them "
            "into the shared volume that tritonserver reads",
            gpu_base=SLIM_BASE,
            local_base=LOCAL_BASE,
        ),
        ImageSpec(
            name="exporter",
            dockerfile="exporter/Dockerfile",
            description="the lab's Prometheus exporters (workloads.exporters)",
            gpu_base=CUDA_RUNTIME_BASE,
            local_base=LOCAL_BASE,
        ),
        ImageSpec(
            name="cuda-kernels",
            dockerfile="cuda-kernels/Dockerfile",
            description="the cuda/ kernels and their runner, compiled with nvcc (needs a CUDA devel base)",
            gpu_base=CUDA_DEVEL_BASE,
            local_base=None,
            build_args={"RUNTIME_IMAGE": CUDA_RUNTIME_ONLY_BASE},
        ),
    )
}


def image(name: str) -> ImageSpec:
    """The spec of image `name`; a KeyError that lists the known names otherwise."""
    try:
        return IMAGES[name]
    except KeyError:
        raise KeyError(f"image {name!r}: unknown (allowed: {', '.join(IMAGES)})") from None


def ref(name: str, registry: str | None = None) -> str:
    """Full reference `<registry>/ailab-<name>:TAG` of image `name` (registry defaults to REGISTRY)."""
    spec = image(name)
    return spec.ref if registry is None else f"{registry.rstrip('/')}/ailab-{spec.name}:{TAG}"
