"""A stand-in for NVML for the GPU runners' CPU tests (CI has no GPU): given readings instead of the device's."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from workloads.gpu import clients

Reading = tuple[float, float, float]  # (epoch s, MiB in use, utilisation %), as NvmlSampler.read() returns


@pytest.fixture
def fake_nvml(monkeypatch: pytest.MonkeyPatch) -> Callable[[list[Reading], Reading], None]:
    """Replace clients.NvmlSampler: `samples` are what a run read, `now` is what read() returns."""

    def install(samples: list[Reading], now: Reading = (0.0, 0.0, 0.0)) -> None:
        class FakeNvml:
            def __init__(self, period_s: float) -> None:
                self.samples = list(samples)

            def read(self) -> Reading:
                return now

            def __enter__(self) -> FakeNvml:
                return self

            def __exit__(self, *exc: object) -> None:
                return None

        monkeypatch.setattr(clients, "NvmlSampler", FakeNvml)

    return install
