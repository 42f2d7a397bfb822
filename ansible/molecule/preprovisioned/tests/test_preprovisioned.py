"""What the pre-provisioned hosts look like after gpu_hosts.yml: nothing installed twice, no network used.

Both containers run without systemd and without a network; their packages came with the image
(tests/molecule/preprovisioned-image.sh), and /var/log/dpkg.log was emptied right before converge.
"""

import json

import pytest

testinfra_hosts = ["podman://ailab-preprovisioned", "podman://ailab-airgap-dir"]


def dpkg_log(host) -> list[str]:
    log = host.file("/var/log/dpkg.log")
    return log.content_string.splitlines() if log.exists else []


def report(host) -> dict:
    return json.loads(host.file("/var/lib/ailab/lab_validate.json").content_string)


def test_the_host_has_no_network_at_all(host):
    routes = host.file("/proc/net/route").content_string.splitlines()
    assert routes[1:] == [], routes  # only the header: not even a default route
    links = host.check_output("ip -o link show").splitlines()
    assert [line.split(":")[1].strip() for line in links] == ["lo"]


def test_the_host_has_no_systemd(host):
    assert not host.file("/run/systemd/system").exists


def test_verify_only_host_installed_nothing_and_added_no_apt_source(host):
    if host.backend.get_hostname() != "ailab-preprovisioned":
        pytest.skip("the verify-only host")
    assert [line for line in dpkg_log(host) if " install " in line or " upgrade " in line] == []
    assert host.run("ls /etc/apt/sources.list.d").stdout.split() == []
    assert not host.file("/etc/apt/preferences.d/nvidia-cuda").exists


def test_package_dir_host_installed_numactl_once_from_its_directory(host):
    if host.backend.get_hostname() != "ailab-airgap-dir":
        pytest.skip("the package-directory host")
    installs = [line for line in dpkg_log(host) if " install " in line]
    assert len(installs) == 1 and " install numactl:" in installs[0], installs
    source = host.file("/etc/apt/sources.list.d/ailab-airgap.list").content_string
    assert "deb [trusted=yes] file:/srv/ailab-debs ./" in source
    assert host.run("numactl --hardware").rc == 0


def test_node_exporter_is_reported_not_manageable_without_systemd(host):
    data = report(host)
    assert data["ok"] is True, data["failed"]
    unmanaged = {u["service"]: u for u in data["not_manageable"]}
    assert "needs systemd" in unmanaged["prometheus-node-exporter"]["reason"]
    assert "prometheus-node-exporter --web.listen-address=0.0.0.0:9100" in unmanaged["prometheus-node-exporter"]["how"]
    check = next(c for c in data["checks"] if c["name"] == "node_exporter")
    assert check["status"] == "skip" and "needs systemd" in check["detail"]


def test_components_outside_lab_components_were_left_alone(host):
    assert not host.file("/etc/profile.d/cuda.sh").exists  # cuda_toolkit not in lab_components
    assert not host.file("/etc/rancher/k3s").exists  # k3s not in lab_components
    assert host.file("/var/lib/ailab/gpu_topology.json").exists
