"""The lab's workload images and their tag, as ailab/contract/facts/images.yaml defines them.

The data file is the one source: the Pulumi stacks read it too (through ailab.contract.facts), and the Cluster
Jobs, `lab images build` and the tests read it through this module. `ref(name)` gives the full reference
`REGISTRY/ailab-<name>:TAG`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ailab.contract import facts

_FACTS = facts.images()

TAG = _FACTS.tag  # bump it in images.yaml on every change to a Dockerfile; the cluster pulls by this tag
REGISTRY = _FACTS.current_registry()  # images.yaml `registry`, or $AILAB_IMAGE_REGISTRY (e.g. ghcr.io/<org>)

CUDA_RUNTIME_BASE = _FACTS.bases["cuda-runtime"]
CUDA_DEVEL_BASE = _FACTS.bases["cuda-devel"]
SLIM_BASE = _FACTS.bases["slim"]
LOCAL_BASE = _FACTS.bases["local"]  # python3 3.11 + pip/venv, built by workloads/images/build.py


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
        return _FACTS.ref(self.name, REGISTRY)

    def ref_of(self, variant: str | None) -> str:
        """Reference of a variant (None: the default build), e.g. localhost/ailab-inference:0.1.0-onnx."""
        if variant is None:
            return self.ref
        if variant not in self.variants:
            allowed = ", ".join(self.variants) or "none"
            raise KeyError(f"variant {variant!r} of image {self.name}: unknown (allowed: {allowed})")
        return f"{self.ref}-{variant}"


IMAGES: dict[str, ImageSpec] = {
    name: ImageSpec(
        name=name,
        dockerfile=img.dockerfile,
        description=img.description,
        gpu_base=_FACTS.bases[img.gpu_base],
        local_base=None if img.local_base is None else _FACTS.bases[img.local_base],
        build_args=dict(img.build_args),
        variants={k: dict(v) for k, v in img.variants.items()},
    )
    for name, img in _FACTS.workload.items()
}


def image(name: str) -> ImageSpec:
    """The spec of image `name`; a KeyError that lists the known names otherwise."""
    try:
        return IMAGES[name]
    except KeyError:
        raise KeyError(f"image {name!r}: unknown (allowed: {', '.join(IMAGES)})") from None


def ref(name: str, registry: str | None = None) -> str:
    """Full reference `<registry>/ailab-<name>:TAG` of image `name` (registry defaults to REGISTRY)."""
    return _FACTS.ref(image(name).name, registry or REGISTRY)
