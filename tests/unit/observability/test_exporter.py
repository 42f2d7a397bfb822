"""The lab exporter over real HTTP: host fallback here, GPU metrics from a stand-in NVML (this machine has no GPU;
the real NVML path runs in d46 on a GPU machine), exemplars in OpenMetrics, and output that passes promtool."""

from __future__ import annotations

import subprocess
import urllib.request

import pytest
from prometheus_client.parser import text_string_to_metric_families

from ailab.contract.ports import free_port
from workloads.exporters.collector import LabCollector
from workloads.exporters.nvml import GpuReading, Nvml
from workloads.exporters.server import serve

OPENMETRICS = "application/openmetrics-text; version=1.0.0"


class FakeNvml(Nvml):
    """Stands in for NVML, which cannot exist without a GPU and driver."""

    def __init__(self) -> None:
        self.error, self.count, self._nv = "", 1, object()

    def read(self) -> list[GpuReading]:
        return [
            GpuReading(0, "NVIDIA H100 80GB HBM3", "GPU-1", 0.97, 0.5, 40 << 30, 80 << 30, 650.5, 700.0, 86.0,
                       1.98e9, 2.6e9, 12345.0, {"python3": 30 << 30, "tritonserver": 10 << 30})
        ]  # fmt: skip

    def close(self) -> None:
        pass


def scrape(port: int, accept: str = "") -> str:
    req = urllib.request.Request(f"http://127.0.0.1:{port}/metrics", headers={"Accept": accept} if accept else {})
    with urllib.request.urlopen(req, timeout=10) as r:
        return r.read().decode()


@pytest.fixture(scope="module")
def host_port() -> int:
    port = free_port()
    serve(port, collector=LabCollector(nvml=Nvml(), node="testnode"))
    return port


@pytest.fixture(scope="module")
def gpu_port() -> int:
    port = free_port()
    serve(port, collector=LabCollector(nvml=FakeNvml(), node="gpunode"))
    return port


def test_without_gpu_exports_host_metrics_labelled_as_such(host_port: int) -> None:
    fams = {f.name: f for f in text_string_to_metric_families(scrape(host_port))}
    info = fams["lab_exporter_info"].samples[0].labels
    assert info["mode"] == "host" and info["gpus"] == "0"
    assert not [n for n in fams if n.startswith("lab_gpu")]
    assert fams["lab_host_memory_used_bytes"].type == "gauge"
    assert fams["lab_host_network_receive_bytes"].type == "counter"
    assert fams["lab_host_memory_used_bytes"].samples[0].value > 0


def test_gpu_metrics_have_units_types_and_bounded_labels(gpu_port: int) -> None:
    fams = {f.name: f for f in text_string_to_metric_families(scrape(gpu_port))}
    assert fams["lab_exporter_info"].samples[0].labels["mode"] == "nvml"
    temp = fams["lab_gpu_temperature_celsius"].samples[0]
    assert temp.labels == {"node": "gpunode", "gpu": "0"} and temp.value == 86.0
    assert fams["lab_gpu_energy_joules"].type == "counter"
    assert fams["lab_gpu_sm_clock_hertz"].samples[0].value == 1.98e9
    procs = {s.labels["process"]: s.value for s in fams["lab_gpu_process_memory_used_bytes"].samples}
    assert procs == {"python3": float(30 << 30), "tritonserver": float(10 << 30)}


def test_openmetrics_carries_exemplars(host_port: int) -> None:
    scrape(host_port)  # at least one read observed before this scrape
    text = scrape(host_port, OPENMETRICS)
    assert text.rstrip().endswith("# EOF")
    assert any(
        "lab_exporter_read_duration_seconds_bucket" in line and '# {trace_id="' in line for line in text.splitlines()
    )


@pytest.mark.parametrize("which", ["host_port", "gpu_port"])
def test_output_passes_promtool_check_metrics(which: str, request: pytest.FixtureRequest) -> None:
    text = scrape(request.getfixturevalue(which))
    p = subprocess.run(["promtool", "check", "metrics"], input=text, capture_output=True, text=True, check=False)
    assert p.returncode == 0, p.stdout + p.stderr
