"""Every Molecule scenario: create, prepare, converge, idempotence, testinfra verify, destroy (podman).

CI has no GPU and cannot reach NVIDIA's repositories or GitHub: tasks needing them carry the tag
needs_vendor_repo, which the scenarios skip; the repository, keyring, pin and unit configuration is applied
and verified. The preprovisioned scenario runs with no network at all and no skipped tags.
The real Debian driver install (DKMS, minutes) is the slow scenario.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from lab_ansible import ANSIBLE_DIR, ansible_env

# (directory molecule runs in, scenario name): what it covers
SCENARIOS = {
    "gpu_hosts": (ANSIBLE_DIR, "gpu_hosts"),  # whole gpu_hosts.yml, k3s server + GPU node, every role
    # gpu_hosts.yml on pre-provisioned hosts without systemd or network: airgap verify-only and package_dir
    "preprovisioned": (ANSIBLE_DIR, "preprovisioned"),
}
# Opt-in (`-m slow`): they keep the default run inside the CI time budget.
SLOW_SCENARIOS = {
    "nvidia_stack": (ANSIBLE_DIR / "roles" / "nvidia_driver", "default"),  # NVIDIA roles with non-default knobs
    "debian_driver": (ANSIBLE_DIR / "roles" / "nvidia_driver", "distribution"),  # Debian non-free driver 535 + DKMS
}


def molecule_test(workdir: Path, scenario: str, log: Path) -> None:
    """Run `molecule test -s <scenario>` and fail with the log's tail when any step fails."""
    with log.open("w") as fh:
        p = subprocess.run(
            ["molecule", "test", "-s", scenario],
            cwd=workdir,
            env=ansible_env(),
            stdout=fh,
            stderr=subprocess.STDOUT,
            check=False,
            timeout=1500,
        )
    if p.returncode != 0:
        tail = "\n".join(log.read_text(errors="replace").splitlines()[-80:])
        pytest.fail(f"molecule test -s {scenario} in {workdir} failed (rc {p.returncode}); log {log}:\n{tail}")


@pytest.mark.molecule
@pytest.mark.parametrize("name", sorted(SCENARIOS))
def test_scenario(name: str, request: pytest.FixtureRequest, tmp_path: Path) -> None:
    request.getfixturevalue("preprovisioned_image" if name == "preprovisioned" else "base_image")
    workdir, scenario = SCENARIOS[name]
    molecule_test(workdir, scenario, tmp_path / f"molecule-{name}.log")


@pytest.mark.molecule
@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(SLOW_SCENARIOS))
def test_slow_scenario(name: str, base_image: str, tmp_path: Path) -> None:
    workdir, scenario = SLOW_SCENARIOS[name]
    molecule_test(workdir, scenario, tmp_path / f"molecule-{name}.log")
