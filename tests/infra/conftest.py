"""testinfra suites for real lab hosts: they run only when --hosts names them.

    pytest --hosts=ssh://gpu-node-1 tests/infra
    pytest --hosts=ssh://k3s-server-1,ssh://gpu-node-1 --ssh-config=~/.ssh/config tests/infra
    pytest --hosts=local:// tests/infra          # on the host itself (a pre-provisioned GPU box)

Without --hosts, testinfra would check the machine running pytest, which is not a lab node: skip instead.

The host profile: what a host is meant to have is what gpu_hosts.yml recorded in its lab_validate report, the
components it got (lab_components) and the services it could not manage (no systemd). A test marked
`component("dcgm")` is skipped on a host without that component, one marked `service("nvidia-dcgm")` on a host
where that service could not be managed; each skip says why. A host without the report gets every check.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
SKIP_REASON = "tests/infra checks real lab hosts: run `pytest --hosts=ssh://<node> tests/infra`"
REPORT = "/var/lib/ailab/lab_validate.json"


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "component(name): needs that gpu_hosts.yml component on the host")
    config.addinivalue_line("markers", "service(name): needs that service managed by gpu_hosts.yml (systemd)")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if config.getoption("hosts", default=None):
        return
    skip = pytest.mark.skip(reason=SKIP_REASON)
    for item in items:
        if HERE in Path(str(item.fspath)).resolve().parents:
            item.add_marker(skip)


def host_profile(host) -> dict | None:
    """The lab_validate report gpu_hosts.yml left on the host, or None (then every check applies)."""
    report = host.file(REPORT)
    return json.loads(report.content_string) if report.exists else None


def profile_skip_reason(profile: dict | None, components: list[str], services: list[str], name: str) -> str | None:
    """Why this host cannot pass a check that needs these components and services, or None when it can."""
    if profile is None:
        return None
    have = profile.get("components") or []
    for c in components:
        if have and c not in have:
            return f"{name}: component {c} is not among this host's lab_components ({', '.join(have)})"
    unmanaged = {u["service"]: u for u in profile.get("not_manageable", [])}
    for s in services:
        if s in unmanaged:
            return f"{name}: service {s} {unmanaged[s]['reason']}"
    return None


@pytest.fixture(autouse=True)
def _host_profile_skips(request: pytest.FixtureRequest) -> None:
    """Skip, with the reason, checks this host's profile says it cannot pass."""
    components = [m.args[0] for m in request.node.iter_markers("component")]
    services = [m.args[0] for m in request.node.iter_markers("service")]
    if not components and not services:
        return
    host = request.getfixturevalue("host")
    reason = profile_skip_reason(host_profile(host), components, services, host.backend.get_hostname())
    if reason:
        pytest.skip(reason)


def has_gpu(host) -> bool:
    """An NVIDIA display/3D controller on the host's PCI bus, or a GPU the loaded driver lists."""
    out = host.run("grep -l 0x10de /sys/bus/pci/devices/*/vendor 2>/dev/null")
    for vendor_file in out.stdout.split():
        cls = host.file(vendor_file.replace("/vendor", "/class")).content_string.strip()
        if cls.startswith(("0x0300", "0x0302")):
            return True
    return host.run("ls /proc/driver/nvidia/gpus 2>/dev/null").stdout.strip() != ""


@pytest.fixture
def gpu_host(host):
    """The host, when it has an NVIDIA GPU; CPU-only nodes (a k3s server) skip the GPU checks."""
    if not has_gpu(host):
        pytest.skip(f"{host.backend.get_hostname()} has no NVIDIA GPU on its PCI bus (CPU-only node)")
    return host
