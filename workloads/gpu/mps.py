"""An MPS control daemon started in private pipe/log directories and stopped again (the compute mode is never
changed: MPS then serves only the clients that share its pipe directory)."""

from __future__ import annotations

import shutil
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


class MpsUnavailableError(RuntimeError):
    pass


def _ctl(env: dict[str, str], command: str) -> str:
    p = subprocess.run(
        ["nvidia-cuda-mps-control"],
        input=command + "\n",
        capture_output=True,
        text=True,
        env=env,
        timeout=30,
        check=False,
    )
    return (p.stdout + p.stderr).strip()


@contextmanager
def mps_daemon(root: Path) -> Iterator[dict[str, str]]:
    """Start `nvidia-cuda-mps-control -d` with pipes and logs under `root`; yields the clients' environment."""
    import os

    if not shutil.which("nvidia-cuda-mps-control"):
        raise MpsUnavailableError("nvidia-cuda-mps-control is not on PATH")
    pipe, log = root / "pipe", root / "log"
    pipe.mkdir(parents=True, exist_ok=True)
    log.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "CUDA_MPS_PIPE_DIRECTORY": str(pipe), "CUDA_MPS_LOG_DIRECTORY": str(log)}
    p = subprocess.run(
        ["nvidia-cuda-mps-control", "-d"], env=env, capture_output=True, text=True, timeout=30, check=False
    )
    if p.returncode != 0:
        raise MpsUnavailableError(f"nvidia-cuda-mps-control -d exited {p.returncode}: {(p.stdout + p.stderr).strip()}")
    try:
        yield {"CUDA_MPS_PIPE_DIRECTORY": str(pipe), "CUDA_MPS_LOG_DIRECTORY": str(log)}
    finally:
        _ctl(env, "quit")
        for _ in range(50):  # the daemon removes its control pipe when it has exited
            if not (pipe / "control").exists():
                break
            time.sleep(0.2)


def server_list(clients_env: dict[str, str]) -> str:
    import os

    return _ctl({**os.environ, **clients_env}, "get_server_list")


def control_log(root: Path) -> str:
    f = root / "log" / "control.log"
    return f.read_text()[-2000:] if f.exists() else ""
