"""What a lab GPU node must look like after `ansible-playbook ansible/gpu_hosts.yml` (real hosts only).

Env: AILAB_EXPECTED_GPUS (GPUs nvidia-smi must list; default: the PCI scan's count, else the driver's).
Markers component(...)/service(...) skip, with the reason, what this host's profile says it cannot pass
(see conftest.py): a pre-provisioned box without DCGM or systemd is checked for what it has.
"""

from __future__ import annotations

import json
import os

import pytest


def _pci_gpus(host) -> int:
    out = host.run("for d in /sys/bus/pci/devices/*; do echo $(cat $d/vendor) $(cat $d/class); done")
    pci = sum(1 for line in out.stdout.splitlines() if line.startswith("0x10de 0x030"))
    return pci or len(host.run("ls /proc/driver/nvidia/gpus 2>/dev/null").stdout.split())


@pytest.mark.component("nvidia_driver")
def test_driver_module_is_loaded_and_nouveau_is_not(gpu_host):
    assert gpu_host.file("/proc/driver/nvidia/version").exists
    assert not gpu_host.file("/sys/module/nouveau").exists
    assert "blacklist nouveau" in gpu_host.file("/etc/modprobe.d/blacklist-nouveau.conf").content_string


@pytest.mark.component("nvidia_driver")
def test_nvidia_smi_sees_every_gpu(gpu_host):
    out = gpu_host.run("nvidia-smi --query-gpu=index,name,driver_version --format=csv,noheader")
    assert out.rc == 0, out.stderr
    want = int(os.environ.get("AILAB_EXPECTED_GPUS", 0)) or _pci_gpus(gpu_host)
    assert len(out.stdout.strip().splitlines()) == want


@pytest.mark.component("nvidia_driver")
@pytest.mark.service("nvidia-persistenced")
def test_persistence_daemon_runs(gpu_host):
    assert gpu_host.service("nvidia-persistenced").is_running


@pytest.mark.component("cuda_toolkit")
def test_cuda_toolkit_compiler_is_installed(gpu_host):
    out = gpu_host.run("bash -lc 'nvcc --version'")
    assert out.rc == 0 and "Cuda compilation tools" in out.stdout


@pytest.mark.component("nvidia_container_toolkit")
def test_container_runtime_sees_the_gpu(gpu_host):
    assert gpu_host.package("nvidia-container-toolkit").is_installed
    out = gpu_host.run_expect([0], "nvidia-container-cli --load-kmods info")
    assert "Device Index" in out.stdout
    assert gpu_host.file("/etc/cdi/nvidia.yaml").exists


@pytest.mark.component("dcgm")
@pytest.mark.service("nvidia-dcgm")
@pytest.mark.service("dcgm-exporter")
def test_dcgm_exporter_serves_gpu_metrics_on_9400(gpu_host):
    assert gpu_host.service("nvidia-dcgm").is_running
    assert gpu_host.service("dcgm-exporter").is_running
    assert gpu_host.socket("tcp://9400").is_listening
    out = gpu_host.run(
        "python3 -c \"import urllib.request;print(urllib.request.urlopen('http://127.0.0.1:9400/metrics').read().decode())\""
    )
    assert "DCGM_FI_DEV_GPU_UTIL" in out.stdout


@pytest.mark.component("gpu_sharing")
@pytest.mark.service("nvidia-mps")
def test_mps_daemon_runs_when_enabled(gpu_host):
    if not gpu_host.file("/etc/systemd/system/nvidia-mps.service").exists:
        pytest.skip("MPS is not enabled on this node (gpu_sharing_mps_enabled: false)")
    assert gpu_host.service("nvidia-mps").is_running
    unit = gpu_host.file("/etc/systemd/system/nvidia-mps.service").content_string
    pipe_dir = next(line.split("=", 2)[2] for line in unit.splitlines() if "CUDA_MPS_PIPE_DIRECTORY" in line)
    assert gpu_host.file(f"{pipe_dir}/control").exists


@pytest.mark.component("lab_validate")
def test_lab_validate_report_is_ok(host):
    report = host.file("/var/lib/ailab/lab_validate.json")
    assert report.exists, "run ansible/gpu_hosts.yml first: lab_validate writes this report"
    data = json.loads(report.content_string)
    assert data["ok"] is True, data["failed"]


@pytest.mark.component("gpu_topology")
def test_topology_report_has_the_gpu_matrix_and_numa_nodes(gpu_host):
    report = gpu_host.file("/var/lib/ailab/gpu_topology.json")
    assert report.exists, "run ansible/gpu_hosts.yml first: gpu_topology writes this report"
    data = json.loads(report.content_string)
    assert "GPU0" in (data["nvidia_smi_topo"] or ""), data["nvidia_smi_topo"]
    assert data["numa_nodes"] and data["numactl_hardware"], data


@pytest.mark.component("gpu_sharing")
def test_mps_control_binary_is_there_when_mps_is_enabled(gpu_host):
    unit_or_report = gpu_host.file("/var/lib/ailab/lab_validate.json")
    unmanaged = json.loads(unit_or_report.content_string).get("not_manageable", []) if unit_or_report.exists else []
    enabled = gpu_host.file("/etc/systemd/system/nvidia-mps.service").exists or any(
        u["service"] == "nvidia-mps" for u in unmanaged
    )
    if not enabled:
        pytest.skip("MPS is not enabled on this node (gpu_sharing_mps_enabled: false)")
    assert gpu_host.exists("nvidia-cuda-mps-control")
