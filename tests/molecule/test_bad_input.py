"""Bad variables are refused with a message naming the variable, the value and what is allowed, before any change.

Runs ansible-playbook against this machine (connection local): argument_specs and the roles' first checks
run before any task that changes the host; the runs also use --check, so nothing is installed or written.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from lab_ansible import ANSIBLE_DIR, ansible_env

PLAYBOOK = Path(__file__).resolve().parent / "playbooks" / "role_with_vars.yml"

CASES = {
    "mps_percentage_out_of_range": (
        "gpu_sharing",
        {"gpu_sharing_mps_enabled": True, "gpu_sharing_mps_active_thread_percentage": 150},
        r"gpu_sharing_mps_active_thread_percentage 150 .*allowed are a percentage of SMs from 1 to 100",
    ),
    "mps_percentage_not_a_number": (
        "gpu_sharing",
        {"gpu_sharing_mps_active_thread_percentage": "lots"},
        r"gpu_sharing_mps_active_thread_percentage.*(int|integer)",
    ),
    "unknown_mig_profile": (
        "gpu_sharing",
        {"gpu_sharing_mig_enabled": True, "gpu_sharing_mig_devices": [{"profile": "9g.99gb", "count": 1}]},
        r"profile must be one of: .*1g\.10gb.*got: 9g\.99gb",
    ),
    "mig_on_a_host_without_gpu": (
        "gpu_sharing",
        {"gpu_sharing_mig_enabled": True},
        r"gpu_sharing_mig_enabled is true but localhost has no NVIDIA GPU",
    ),
    "driver_branch_format": (
        "nvidia_driver",
        {"nvidia_driver_branch": "580.xx"},
        r'nvidia_driver_branch "580\.xx": allowed is a three-digit driver branch',
    ),
    "driver_source_unknown": (
        "nvidia_driver",
        {"nvidia_driver_source": "ppa"},
        r"nvidia_driver_source must be one of: cuda_repo, distribution, got: ppa",
    ),
    "debian_distribution_driver_branch": (
        "nvidia_driver",
        {"nvidia_driver_source": "distribution", "nvidia_driver_branch": "580"},
        r'nvidia_driver_branch "580".*Debian 12 only "535"',
    ),
    "topology_manager_policy_unknown": (
        "k3s",
        {"k3s_token": "t", "k3s_topology_manager_policy": "numa"},
        r"k3s_topology_manager_policy must be one of: none, best-effort, restricted, single-numa-node, got: numa",
    ),
    "tensorrt_without_a_cuda_build": (
        "tensorrt",
        {"tensorrt_version": "10.13.3.9", "tensorrt_cuda_version": "11.8"},
        r"tensorrt_version 10\.13\.3\.9 with tensorrt_cuda_version 11\.8: allowed are "
        r"10\.13\.3\.9 \(CUDA 12\.9, 13\.0\)",
    ),
    "airgap_unknown_key": (
        "lab_host",
        {"airgap": {"enabled": True, "mirror": "http://mirror.lab"}},
        r"airgap \{.*\}: allowed are false \(online\), true \(air-gapped, verify only\) or a mapping with the keys "
        r"enabled, package_dir, apt_repository, apt_signed_by",
    ),
    "airgap_relative_package_dir": (
        "lab_host",
        {"airgap": {"enabled": True, "package_dir": "debs"}},
        r"package_dir is an absolute directory of \.deb files",
    ),
    "unknown_component": (
        "lab_host",
        {"lab_components": ["gpu_topology", "slurm"]},
        r"lab_components must be one or more of: .*Got no match for: slurm",
    ),
    # Verify only: everything missing is listed, with how to provide it, before anything changes (this CI
    # machine has no NVIDIA Container Toolkit and no DCGM).
    "airgap_verify_lists_what_is_missing": (
        "lab_host",
        {"airgap": True, "lab_components": ["nvidia_container_toolkit", "dcgm", "gpu_topology"]},
        r"airgap: localhost is air-gapped and verifies only \(airgap: true\), and it misses \d+ item\(s\); "
        r"nothing was changed: - nvidia_container_toolkit: NVIDIA Container Toolkit .* -> apt package\(s\) "
        r"nvidia-container-toolkit .* from NVIDIA's libnvidia-container repository .* - dcgm: DCGM 4 .*"
        r"Provide them in one of these ways",
    ),
}


def run_role(role: str, variables: dict, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    extra = tmp_path / "vars.json"
    extra.write_text(json.dumps({"role_under_test": role, **variables}))
    return subprocess.run(
        # --check: even a regressed check could not change this machine.
        ["ansible-playbook", str(PLAYBOOK), "-i", "localhost,", "-e", f"@{extra}", "--check"],
        cwd=ANSIBLE_DIR,
        env=ansible_env(),
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
    )


@pytest.fixture(scope="module")
def runs(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict]:
    """Every selected case's ansible-playbook run, started together on a pool as wide as the machine: one run keeps one
    core busy (one ansible-playbook is mostly one busy Python process), and the cases share nothing (their own vars
    file, --check, connection local). Each test waits for, and checks, its own run."""
    cases = sorted(
        {
            item.callspec.params["case"]
            for item in request.session.items
            if getattr(item, "obj", None) is test_bad_variables_fail_before_any_change
        }
    )
    with ThreadPoolExecutor(max_workers=os.cpu_count() or 2) as pool:
        futures = {case: pool.submit(run_role, *CASES[case][:2], tmp_path_factory.mktemp(case)) for case in cases}
        yield futures
        for f in futures.values():  # only when a test was interrupted: the rest need not start
            f.cancel()


@pytest.mark.parametrize("case", sorted(CASES))
def test_bad_variables_fail_before_any_change(case: str, runs: dict) -> None:
    _role, _variables, message = CASES[case]
    p = runs[case].result()
    output = " ".join((p.stdout + p.stderr).split())  # Ansible wraps long messages
    assert p.returncode == 2, output[-2000:]
    assert re.search(message, output), output[-2000:]
    assert re.search(r"localhost\s*:\s*ok=\d+\s+changed=0\s+unreachable=0\s+failed=1", output), output[-1000:]
