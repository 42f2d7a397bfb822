"""Fixtures for the Day-3 model tests: one trained MLP and one default export per test session."""

from __future__ import annotations

from pathlib import Path

import pytest

from workloads.models import mlp


@pytest.fixture(scope="session")
def trained() -> mlp.Trained:
    """The Day-3 MLP trained with the default recipe (about a second on 2 cores), shared with export_default_model."""
    return mlp.default_trained()


@pytest.fixture(scope="session")
def default_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """mlp.onnx written by export_default_model (opset 17) into a session temp dir."""
    return mlp.export_default_model(tmp_path_factory.mktemp("default-model"))
