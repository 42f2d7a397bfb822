"""The day-46 runners on this CPU host: the GPU is a stand-in NVML (FakeNvml, the same as the exporter tests use)
and the GPU load a short sleep, so what is checked is the runners' own logic: which metrics they report, how phases
and work are counted, that each records its substitute, and that they skip with a reason where they cannot run.
The real NVML and torch paths run on a GPU machine (`lab run d46 --device cuda`)."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from test_exporter import FakeNvml

from ailab.contract import Context, Skip
from workloads.exporters.collector import LabCollector
from workloads.observability import gpuwatch
from workloads.observability.experiments import gpu_exporter_load as d46


@pytest.fixture
def fake_gpu(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(gpuwatch, "collector", lambda: LabCollector(nvml=FakeNvml(), node="gpunode"))

    def step_factory(*_: object) -> object:
        def step() -> int:
            time.sleep(0.01)
            return 4

        return step

    monkeypatch.setattr(gpuwatch, "mlp_inference_step", step_factory)


def _ctx(tmp_path: Path, device: str = "cuda") -> Context:
    return Context(experiment_id="d46.e1", device=device, quick=True, workdir=tmp_path)


@pytest.mark.parametrize(
    "runner, params",
    [(d46.exporter_metrics, d46.ExporterParams()), (d46.prometheus_scrape, d46.ScrapeParams()),
     (d46.gpu_panels, d46.PanelParams()), (d46.temperature_alert, d46.TemperatureAlertParams()),
     (d46.inference_load, d46.InferenceLoadParams())],
)  # fmt: skip
def test_every_runner_skips_without_cuda(tmp_path: Path, runner: object, params: object) -> None:
    with pytest.raises(Skip, match="needs --device cuda"):
        runner(_ctx(tmp_path, "cpu"), params)  # type: ignore[operator]


def test_runners_that_need_prometheus_name_the_missing_binary(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(d46.shutil, "which", lambda b: None if "alertmanager" in b else f"/usr/bin/{b}")
    with pytest.raises(Skip, match=r"binaries not on this host: prometheus-alertmanager\|alertmanager \(apt-get"):
        d46.temperature_alert(_ctx(tmp_path), d46.TemperatureAlertParams())
    monkeypatch.setattr(d46.shutil, "which", lambda b: None if b == "prometheus-alertmanager" else f"/usr/bin/{b}")
    monkeypatch.setattr(gpuwatch, "collector", lambda: pytest.fail("reached the GPU: the binaries were found"))
    with pytest.raises(pytest.fail.Exception, match="binaries were found"):  # upstream's name `alertmanager` is enough
        d46.temperature_alert(_ctx(tmp_path), d46.TemperatureAlertParams())


def test_exporter_metrics_lists_each_metric_with_its_dcgm_field(tmp_path: Path, fake_gpu: None) -> None:
    out = d46.exporter_metrics(_ctx(tmp_path), d46.ExporterParams(scrapes=2))
    rows = {r[0]: r for r in out.tables[0].rows}
    assert rows["lab_gpu_temperature_celsius"][1:] == ["DCGM_FI_DEV_GPU_TEMP", 86.0]
    assert rows["lab_gpu_utilization_ratio"][1:] == ["DCGM_FI_DEV_GPU_UTIL", 0.97]
    assert out.tables[1].rows[0][0] == 2 and out.tables[1].rows[0][3] > 0  # two scrapes, a non-empty body
    assert out.substitute == gpuwatch.NVML_EXPORTER
    assert out.notes == ["Every DCGM field the GPU dashboard reads has its lab_gpu_* equivalent in the output."]


def test_inference_load_counts_phases_and_the_requests_served(tmp_path: Path, fake_gpu: None) -> None:
    p = d46.InferenceLoadParams(idle_s=0.3, load_s=0.5, cool_s=0.3, scrape_interval_s=0.1, batch=4)
    out = d46.inference_load(_ctx(tmp_path), p)
    phases = {r[0]: r for r in out.tables[0].rows}
    assert list(phases) == ["idle (model loaded)", "inference load", "cool-down"]
    assert phases["inference load"][1:3] == [97.0, 97.0] and phases["inference load"][5] == 86.0
    served, rate, p50, _ = out.tables[1].rows[0]
    assert served > 0 and served % 4 == 0 and rate == round(served / 0.5, 1) and p50 >= 10.0
    assert out.substitute is not None and "NVML" in out.substitute.used
    assert set(out.series[0].lines) == {"utilisation %", "temperature °C"}


def test_longest_run_over_a_threshold() -> None:
    hot = [(float(t), 86.0) for t in range(70)]
    assert gpuwatch.longest_over(hot, 85.0) == 69.0
    assert gpuwatch.longest_over([*hot[:30], (30.0, 80.0), (31.0, 90.0)], 85.0) == 29.0
    assert gpuwatch.longest_over(hot, 90.0) == 0.0


def test_panel_queries_run_for_all_instances() -> None:
    expr = 'rate(x{instance=~"$instance"}[$__rate_interval]) or y{model=~"$model"}'
    assert gpuwatch.panel_expr(expr) == 'rate(x{instance=~".*"}[1m]) or y{model=~".*"}'
