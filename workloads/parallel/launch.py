"""Run a multi-GPU worker module (one process per GPU inside) and read its harness JSON lines; end each of its
spawned ranks (`leave_group`)."""

from __future__ import annotations

import os
import subprocess
import sys

from ailab.contract import Skip, probes
from ailab.contract.paths import REPO_ROOT
from workloads.kernels import jsonl


def run_worker(module: str, args: list[str], env: dict[str, str] | None = None) -> jsonl.Parsed:
    """`python -m module args` with NVLink multicast off; its exit code 3 means "not enough GPUs here" and becomes a
    skip, any other failure an error carrying the end of its stderr."""
    env = {**os.environ, **(env or {}), "NCCL_NVLS_ENABLE": "0", "TORCH_SYMM_MEM_DISABLE_MULTICAST": "1"}
    cmd = [sys.executable, "-m", module, *args]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=REPO_ROOT, timeout=900, check=False)
    if proc.returncode == 3:
        raise Skip(proc.stderr.strip())
    if proc.returncode != 0:
        raise RuntimeError(f"{module} exited {proc.returncode}: {proc.stderr[-2000:]}")
    return jsonl.parse(proc.stdout)


def gpu_count() -> int:
    """GPUs of this host (NVML / nvidia-smi; 0 without a driver)."""
    return len(probes.gpus())


def leave_group() -> None:
    """End a spawned rank: wait for every rank (rank 0 hosts the store: no rank tears the group down while another
    still uses it), tear the group down, flush what was printed, then leave with os._exit(0).

    A gloo rank was SIGABRTed now and then on CI's busy host ('terminate called without an active exception': a C++
    thread object destroyed while still joinable), once even with the barrier in place. _exit skips libtorch's
    destructors at interpreter exit, where such a thread can be left; mp.spawn reads the exit code 0 as success."""
    import torch.distributed as dist

    dist.barrier()
    dist.destroy_process_group()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)
