"""The day-46 runners against real Prometheus, Alertmanager and the webhook receiver, with a scripted NVML standing
in for the GPU (this machine has none) and a sleep standing in for the matmul load: what is checked is the path a
GPU reading takes (exporter -> Prometheus -> panel query / alert rule -> Alertmanager -> webhook), not the GPU."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import pytest

from ailab.contract import Context
from ailab.local.platform import Platform
from workloads.exporters.collector import LabCollector
from workloads.exporters.nvml import GpuReading, Nvml
from workloads.observability import gpuwatch
from workloads.observability.experiments import gpu_exporter_load as d46

pytestmark = pytest.mark.integration


class ScriptedNvml(Nvml):
    """One GPU that reads idle (40 °C, 0 %) until the stand-in load first runs, then busy (50 °C, 97 %)."""

    def __init__(self) -> None:
        self.error, self.count, self._nv, self.reads, self.busy = "", 1, object(), 0, False

    def read(self) -> list[GpuReading]:
        self.reads += 1
        util, temp = (0.97, 50.0) if self.busy else (0.0, 40.0)
        return [GpuReading(0, "Scripted GPU", "GPU-s", util, 0.4, 30 << 30, 80 << 30, 500.0, 700.0, temp, 1.9e9,
                           2.6e9, 1000.0 + self.reads, {"python3": 30 << 30})]  # fmt: skip

    def close(self) -> None:
        pass


@pytest.fixture
def ctx(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, local_platform: Callable[..., Platform]) -> Context:
    gpu = ScriptedNvml()
    monkeypatch.setattr(gpuwatch, "collector", lambda: LabCollector(nvml=gpu, node="gpunode"))

    def fake_matmul(*_: object) -> object:
        def step() -> int:
            gpu.busy = True  # as a real load heats the GPU
            time.sleep(0.05)
            return 1

        return step

    monkeypatch.setattr(gpuwatch, "matmul_step", fake_matmul)
    return Context(experiment_id="d46.e4", device="cuda", quick=True, workdir=tmp_path, platform=local_platform)


def test_temperature_rule_and_its_drill_copy_through_alertmanager(ctx: Context) -> None:
    out = d46.temperature_alert(ctx, d46.TemperatureAlertParams(load_s=8, drill_margin_c=3))
    rows = {r[0]: r for r in out.tables[0].rows}
    high, drill = rows["GPUTemperatureHigh"], rows["GPUTemperatureDrill"]
    assert high[1:4] == ["> 85 °C", 60.0, 50.0] and high[5:] == ["never", "none"]
    assert drill[1] == "> 43 °C" and isinstance(drill[5], float) and isinstance(drill[6], float)
    assert 0 <= drill[5] <= drill[6]  # fired after the load started, notified after it fired
    assert out.notes == [
        "GPUTemperatureHigh (DCGM_FI_DEV_GPU_TEMP > 85 or lab_gpu_temperature_celsius > 85, for 1m) never fired: "
        "the GPU peaked at 50 °C, below 85 °C, in 8 s of load."
    ]
    assert out.substitute == d46.LOCAL_PROMETHEUS


def test_gpu_metrics_read_back_through_prometheus(ctx: Context) -> None:
    out = d46.prometheus_scrape(ctx, d46.ScrapeParams(window_s=3))
    rows = {r[0]: r for r in out.tables[0].rows}
    assert rows["lab_gpu_utilization_ratio"][1:3] == [0.0, 0.0] and rows["lab_gpu_utilization_ratio"][3] >= 1
    assert rows["lab_gpu_temperature_celsius"][1:3] == [40.0, 40.0]  # no load runs in this experiment
    up, scrape_ms, samples = out.tables[1].rows[0]
    assert up == 1.0 and scrape_ms > 0 and samples > 10


def test_every_gpu_panel_query_runs_and_the_dcgm_only_panel_is_named(ctx: Context) -> None:
    out = d46.gpu_panels(ctx, d46.PanelParams(idle_s=2, load_s=4))
    rows = {r[0]: r for r in out.tables[0].rows}
    assert rows["GPU utilisation"][2:4] == [0.0, 97.0] and rows["Temperature"][2:4] == [40.0, 50.0]
    assert rows["XID errors"][3] is None  # DCGM only: no NVML fallback
    assert out.notes[0].startswith("Panels without data under load: ['XID errors'")
    assert out.substitute is not None and out.substitute.instead_of.startswith("Grafana")
