"""What a GPU node container must look like after ansible/gpu_hosts.yml.

CI has no GPU and cannot reach NVIDIA's repositories: these tests check the repository, keyring and pin
configuration, units and settings the roles apply; tests/infra checks the installed stack on real GPU nodes.
"""

import json

testinfra_hosts = ["podman://ailab-gpu-node"]


def test_cuda_repo_is_configured_with_keyring_and_pin(host):
    src = host.file("/etc/apt/sources.list.d/nvidia-cuda.sources").content_string
    assert "URIs: https://developer.download.nvidia.com/compute/cuda/repos/debian12/x86_64/" in src
    assert "Signed-By: /usr/share/keyrings/cuda-archive-keyring.gpg" in src
    pref = host.file("/etc/apt/preferences.d/nvidia-cuda").content_string
    assert "Pin: origin developer.download.nvidia.com" in pref and "Pin-Priority: 600" in pref


def test_driver_is_pinned_to_branch_580_and_nouveau_blacklisted(host):
    pin = host.file("/etc/apt/preferences.d/nvidia-driver-branch").content_string
    assert "Pin: version 580.*" in pin and "nvidia-open*" in pin
    assert "blacklist nouveau" in host.file("/etc/modprobe.d/blacklist-nouveau.conf").content_string


def test_apt_accepts_every_pin_file(host):
    # apt-cache policy parses sources and preferences: a malformed pin or deb822 file makes it fail.
    out = host.run("apt-cache policy")
    assert out.rc == 0, out.stderr
    assert "E:" not in out.stderr


def test_cuda_toolkit_is_on_path_and_in_ld_config(host):
    assert "CUDA_HOME=/usr/local/cuda-13.0" in host.file("/etc/profile.d/cuda.sh").content_string
    assert "/usr/local/cuda-13.0/lib64" in host.file("/etc/ld.so.conf.d/cuda-13-0.conf").content_string
    assert "Pin: version 13.0.*" in host.file("/etc/apt/preferences.d/cuda-toolkit").content_string


def test_container_toolkit_repo_pin_and_nvkind_switch(host):
    src = host.file("/etc/apt/sources.list.d/nvidia-container-toolkit.sources").content_string
    assert "nvidia.github.io/libnvidia-container/stable/deb/amd64" in src
    assert "Pin: version 1.17.8-1" in host.file("/etc/apt/preferences.d/nvidia-container-toolkit").content_string
    cfg = host.file("/etc/nvidia-container-runtime/config.toml").content_string
    assert "accept-nvidia-visible-devices-as-volume-mounts = true" in cfg


def test_tensorrt_is_pinned_to_the_cuda_build(host):
    pin = host.file("/etc/apt/preferences.d/tensorrt").content_string
    assert "Pin: version 10.13.3.9-1+cuda13.0" in pin


def test_dcgm_exporter_unit_listens_on_9400(host):
    unit = host.file("/etc/systemd/system/dcgm-exporter.service").content_string
    assert "--address=0.0.0.0:9400" in unit
    assert "--remote-hostengine-info=localhost:5555" in unit
    assert host.service("dcgm-exporter").is_enabled
    assert "DCGM_FI_DEV_GPU_UTIL, gauge" in host.file("/etc/dcgm-exporter/ailab-counters.csv").content_string


def test_mps_daemon_unit_dirs_and_thread_percentage(host):
    unit = host.file("/etc/systemd/system/nvidia-mps.service").content_string
    assert "Environment=CUDA_MPS_ACTIVE_THREAD_PERCENTAGE=50" in unit
    assert "ExecStart=/usr/bin/nvidia-cuda-mps-control -d" in unit
    assert host.service("nvidia-mps").is_enabled
    assert host.file("/run/nvidia-mps").is_directory
    assert host.file("/var/log/nvidia-mps").is_directory
    assert "d /run/nvidia-mps" in host.file("/etc/tmpfiles.d/nvidia-mps.conf").content_string


def test_mig_is_off_unless_asked(host):
    assert not host.file("/etc/nvidia-mig-manager/ailab-config.yaml").exists


def test_k3s_agent_joins_the_server_with_gpu_label(host):
    text = host.file("/etc/rancher/k3s/config.yaml").content_string
    assert "server: https://ailab-k3s-server:6443" in text
    assert "nvidia.com/gpu.present=true" in text
    assert host.service("k3s-agent").is_enabled


def test_node_exporter_and_topology_metrics(host):
    assert host.socket("tcp://0.0.0.0:9100").is_listening
    assert "ailab_numa_nodes" in host.file("/var/lib/prometheus/node-exporter/gpu_topology.prom").content_string


def test_validation_report_records_why_gpu_checks_were_skipped(host):
    report = json.loads(host.file("/var/lib/ailab/lab_validate.json").content_string)
    assert report["ok"] is True and report["gpu_present"] is False
    skipped = {c["name"] for c in report["checks"] if c["status"] == "skip"}
    assert skipped == {"driver_loaded", "nvidia_smi_gpus", "cuda_sample", "container_runtime_gpu", "dcgm"}
    assert report["virtualization"] == "podman"
