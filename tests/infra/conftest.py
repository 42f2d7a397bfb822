"""testinfra suites for real lab hosts: they run only when --hosts names them.

    pytest --hosts=ssh://gpu-node-1 tests/infra
    pytest --hosts=ssh://k3s-server-1,ssh://gpu-node-1 --ssh-config=~/.ssh/config tests/infra

Without --hosts, testinfra would check the machine running pytest, which is not a lab node: skip instead.
"""

from __future__ import annotations

from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
SKIP_REASON = "tests/infra checks real lab hosts: run `pytest --hosts=ssh://<node> tests/infra`"


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if config.getoption("hosts", default=None):
        return
    skip = pytest.mark.skip(reason=SKIP_REASON)
    for item in items:
        if HERE in Path(str(item.fspath)).resolve().parents:
            item.add_marker(skip)


def has_gpu(host) -> bool:
    """An NVIDIA display/3D controller on the host's PCI bus (needs no driver)."""
    out = host.run("grep -l 0x10de /sys/bus/pci/devices/*/vendor 2>/dev/null")
    for vendor_file in out.stdout.split():
        cls = host.file(vendor_file.replace("/vendor", "/class")).content_string.strip()
        if cls.startswith(("0x0300", "0x0302")):
            return True
    return False


@pytest.fixture
def gpu_host(host):
    """The host, when it has an NVIDIA GPU; CPU-only nodes (a k3s server) skip the GPU checks."""
    if not has_gpu(host):
        pytest.skip(f"{host.backend.get_hostname()} has no NVIDIA GPU on its PCI bus (CPU-only node)")
    return host
