"""Fixtures for the container tests: a real podman (or docker) and the inference image, built once per session."""

from __future__ import annotations

import pytest

from workloads.images import build


@pytest.fixture(scope="session")
def engine() -> str:
    """The container engine; the session skips (with the engine's own message) where none can run containers."""
    try:
        return build.engine()
    except build.ImagesError as exc:
        pytest.skip(str(exc))


@pytest.fixture(scope="session")
def inference_image(engine: str) -> build.BuildResult:
    """The inference image's ONNX-only variant (the CI variant), built with the layer cache; the base image too."""
    return build.build_image("inference", variant="onnx", eng=engine)
