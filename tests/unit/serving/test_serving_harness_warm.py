"""harness.warm: every model gets its n warm-up requests, the models side by side, and a model that fails is
reported. The tritonserver client is replaced by a recording fake (no server is needed to show the order of calls;
tests/integration/serving and every live experiment warm real servers through the same function)."""

from __future__ import annotations

import threading
from collections import Counter
from types import SimpleNamespace

import pytest

from workloads.serving import harness
from workloads.serving.client import InferenceError


def fake_client(models: list[str], calls: Counter, fail: str | None = None) -> type:
    # every model's first request waits until all models have sent theirs: one after another would never get there
    barrier = threading.Barrier(len(models), timeout=10)
    lock = threading.Lock()

    class FakeClient:
        def __init__(self, url: str, protocol: str, timeout_s: float) -> None:
            assert protocol == "grpc" and url == "127.0.0.1:1"

        def __enter__(self) -> FakeClient:
            return self

        def __exit__(self, *exc: object) -> None:
            return None

        def infer(self, model: str, inputs: dict) -> dict:
            with lock:
                calls[model] += 1
                first = calls[model] == 1
            if first:
                barrier.wait()
            if model == fail:
                raise InferenceError("server", model, "", "grpc://127.0.0.1:1", "model failed")
            return {}

    return FakeClient


def served() -> harness.Served:
    return SimpleNamespace(address=lambda proto: "127.0.0.1:1")  # type: ignore[return-value]


def test_each_model_is_warmed_n_times_side_by_side(monkeypatch):
    models, calls = ["a", "b", "c"], Counter()
    monkeypatch.setattr(harness, "Client", fake_client(models, calls))
    harness.warm(served(), models, 5)
    assert calls == {"a": 5, "b": 5, "c": 5}


def test_a_model_that_fails_its_warm_up_fails_it_by_name(monkeypatch):
    models, calls = ["a", "b"], Counter()
    monkeypatch.setattr(harness, "Client", fake_client(models, calls, fail="b"))
    with pytest.raises(InferenceError, match="model 'b'"):
        harness.warm(served(), models, 3)
    assert calls["a"] == 3  # the other model's warm-up ran to its end


def test_nothing_to_warm_sends_nothing(monkeypatch):
    calls: Counter = Counter()
    monkeypatch.setattr(harness, "Client", fake_client(["a"], calls))
    harness.warm(served(), ["a"], 0)
    harness.warm(served(), [], 5)
    assert not calls
