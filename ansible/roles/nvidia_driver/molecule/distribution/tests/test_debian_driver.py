"""Debian 12's NVIDIA driver 535 installed from non-free, with the module built by DKMS (no GPU: not loaded)."""

testinfra_hosts = ["podman://ailab-debian-driver"]


def test_non_free_components_are_enabled(host):
    assert "non-free non-free-firmware" in host.file("/etc/apt/sources.list.d/debian-non-free.sources").content_string


def test_driver_packages_are_branch_535(host):
    pkg = host.package("nvidia-driver")
    assert pkg.is_installed
    assert pkg.version.startswith("535.")
    assert host.package("nvidia-kernel-dkms").is_installed


def test_dkms_built_the_module(host):
    out = host.run("dkms status nvidia-current")
    assert out.rc == 0 and "installed" in out.stdout, out.stdout + out.stderr


def test_persistence_daemon_enabled_and_nouveau_blacklisted(host):
    assert host.service("nvidia-persistenced").is_enabled
    assert "blacklist nouveau" in host.file("/etc/modprobe.d/blacklist-nouveau.conf").content_string


def test_no_cuda_repo_when_driver_comes_from_debian(host):
    assert not host.file("/etc/apt/sources.list.d/nvidia-cuda.sources").exists
