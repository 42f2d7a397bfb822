"""Paths and environment shared by the Ansible tests (Molecule scenarios and bad-input runs)."""

from __future__ import annotations

import os
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
ANSIBLE_DIR = REPO / "ansible"
VENV_BIN = REPO / ".venv" / "bin"
BASE_IMAGE = "localhost/debian-systemd:bookworm"
# A "pre-provisioned" GPU host without systemd or network (tests/molecule/preprovisioned-image.sh).
PREPROVISIONED_IMAGE = "localhost/ailab-preprovisioned:bookworm"
# The packages every scenario's containers need: systemd as PID 1, python3 for Ansible, apt for the roles.
BASE_PACKAGES = "python3,python3-apt,systemd,systemd-sysv,dbus,sudo,ca-certificates,iproute2,gnupg"


def ansible_env() -> dict[str, str]:
    """Environment for ansible-playbook/molecule: the venv's tools first, the repo's Ansible config."""
    env = dict(os.environ)
    env["PATH"] = f"{VENV_BIN}:{env.get('PATH', '')}"
    env["ANSIBLE_CONFIG"] = str(ANSIBLE_DIR / "ansible.cfg")
    env["ANSIBLE_FORCE_COLOR"] = "0"
    env["PY_COLORS"] = "0"
    return env
