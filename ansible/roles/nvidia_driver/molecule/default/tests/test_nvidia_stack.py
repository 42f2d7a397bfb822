"""The NVIDIA roles with non-default knobs: what the container must look like (no GPU, no NVIDIA repos in CI)."""

testinfra_hosts = ["podman://ailab-nvidia-stack"]


def test_proprietary_driver_branch_575_is_pinned(host):
    pin = host.file("/etc/apt/preferences.d/nvidia-driver-branch").content_string
    assert "Pin: version 575.*" in pin
    assert "cuda-drivers*" in pin


def test_cuda_12_9_paths(host):
    assert "CUDA_HOME=/usr/local/cuda-12.9" in host.file("/etc/profile.d/cuda.sh").content_string
    assert host.file("/etc/ld.so.conf.d/cuda-12-9.conf").exists
    assert not host.file("/etc/ld.so.conf.d/cuda-13-0.conf").exists


def test_cuda_repo_configured_once(host):
    # four roles need the repo; it is configured by the first and skipped by the others
    assert len(host.file("/etc/apt/sources.list.d").listdir()) == 2  # nvidia-cuda + nvidia-container-toolkit


def test_tensorrt_pip_method_has_no_apt_pin_but_python_venv(host):
    assert not host.file("/etc/apt/preferences.d/tensorrt").exists
    assert host.package("python3-venv").is_installed


def test_nvkind_switch_defaults_to_false(host):
    cfg = host.file("/etc/nvidia-container-runtime/config.toml").content_string
    assert "accept-nvidia-visible-devices-as-volume-mounts = false" in cfg


def test_dcgm_exporter_without_host_engine_on_custom_port(host):
    unit = host.file("/etc/systemd/system/dcgm-exporter.service").content_string
    assert "--address=0.0.0.0:9401" in unit
    assert "remote-hostengine-info" not in unit
    assert "nvidia-dcgm.service" not in unit
    assert host.service("dcgm-exporter").is_enabled


def test_mps_off_leaves_no_unit(host):
    assert not host.file("/etc/systemd/system/nvidia-mps.service").exists
    assert not host.file("/etc/tmpfiles.d/nvidia-mps.conf").exists
