"""Every Molecule scenario: create, prepare, converge, idempotence, testinfra verify, destroy (podman).

CI has no GPU and cannot reach NVIDIA's repositories or GitHub: tasks needing them carry the tag
needs_vendor_repo, which the scenarios skip; the repository, keyring, pin and unit configuration is applied
and verified. The preprovisioned scenario runs with no network at all and no skipped tags.
The real Debian driver install (DKMS, minutes) is the slow scenario.
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
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


class Scenario:
    """One `molecule test -s <scenario>` run in the background, its output in a log file."""

    def __init__(self, workdir: Path, scenario: str, log: Path) -> None:
        self.workdir, self.scenario, self.log = workdir, scenario, log
        self._fh = log.open("w")
        self.proc = subprocess.Popen(
            ["molecule", "test", "-s", scenario],
            cwd=workdir,
            env=ansible_env(),
            stdout=self._fh,
            stderr=subprocess.STDOUT,
        )

    def wait(self, timeout: float = 1500) -> None:
        """Wait for the run; fail with the log's tail when any step failed or it ran past the timeout."""
        try:
            rc = self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.stop()
            rc = f"killed after {timeout:.0f} s"
        self._fh.close()
        if rc != 0:
            tail = "\n".join(self.log.read_text(errors="replace").splitlines()[-80:])
            pytest.fail(f"molecule test -s {self.scenario} in {self.workdir} failed (rc {rc}); log {self.log}:\n{tail}")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def molecule_test(workdir: Path, scenario: str, log: Path) -> None:
    """Run `molecule test -s <scenario>` and fail with the log's tail when any step fails."""
    Scenario(workdir, scenario, log).wait()


@pytest.fixture(scope="session")
def default_runs(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict]:
    """Every selected default scenario, started at once: each has its own containers (names) and ephemeral
    directory, and one scenario alone leaves the CPUs idle between its Ansible, podman and container round trips,
    so side by side they finish well before one after the other would. Each test waits for, and reports, its own."""
    names = sorted(
        {item.callspec.params["name"] for item in request.session.items if getattr(item, "obj", None) is test_scenario}
    )
    for name in names:  # the images first: both scenarios need theirs before create
        request.getfixturevalue("preprovisioned_image" if name == "preprovisioned" else "base_image")
    logs = tmp_path_factory.mktemp("molecule")
    runs = {name: Scenario(*SCENARIOS[name], logs / f"molecule-{name}.log") for name in names}
    yield runs
    for run in runs.values():  # only when a test was interrupted: a finished run has exited already
        run.stop()


@pytest.mark.molecule
@pytest.mark.parametrize("name", sorted(SCENARIOS))
def test_scenario(name: str, default_runs: dict) -> None:
    default_runs[name].wait()


@pytest.mark.molecule
@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(SLOW_SCENARIOS))
def test_slow_scenario(name: str, base_image: str, tmp_path: Path) -> None:
    workdir, scenario = SLOW_SCENARIOS[name]
    molecule_test(workdir, scenario, tmp_path / f"molecule-{name}.log")
