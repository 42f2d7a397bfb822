"""Caching-allocator fragmentation: a mixed-size allocate/free pattern, then reserved vs allocated and the largest
block that still fits under a memory cap, with and without `expandable_segments` (one fresh process each: the
allocator reads PYTORCH_CUDA_ALLOC_CONF at CUDA initialisation).

`python -m workloads.gpu.fragmentation '<json>'` prints one JSON line.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys


def pattern(cfg: dict) -> dict:
    import random

    import torch

    cap_gib = float(cfg.get("cap_gib", 8))
    total = torch.cuda.get_device_properties(0).total_memory
    torch.cuda.set_per_process_memory_fraction(min(1.0, cap_gib * 2**30 / total))
    rng = random.Random(0)
    mib = 2**20
    live: list[torch.Tensor] = []
    peak_reserved = 0
    for _ in range(int(cfg.get("rounds", 40))):
        for _ in range(24):  # odd sizes between 1 and 96 MiB, the shapes of a variable-length batch's activations
            live.append(torch.empty(int(rng.uniform(1, 96) * mib), dtype=torch.uint8, device="cuda"))
        rng.shuffle(live)
        del live[: len(live) * 2 // 3]  # free two thirds, scattered: holes between survivors
        peak_reserved = max(peak_reserved, torch.cuda.memory_reserved())
    allocated, reserved = torch.cuda.memory_allocated(), torch.cuda.memory_reserved()
    stats = torch.cuda.memory_stats()
    # largest single block that still fits, by halving search (in 64 MiB steps)
    lo, hi = 0, int(cap_gib * 1024) // 64
    while lo < hi:
        mid = (lo + hi + 1) // 2
        try:
            t = torch.empty(mid * 64 * mib, dtype=torch.uint8, device="cuda")
            del t
            lo = mid
        except torch.OutOfMemoryError:
            hi = mid - 1
    return {
        "allocated_mib": allocated / mib,
        "reserved_mib": reserved / mib,
        "peak_reserved_mib": peak_reserved / mib,
        "fragmentation_pct": 100 * (1 - allocated / reserved) if reserved else 0.0,
        "segments": int(stats.get("segment.all.current", 0)),
        "inactive_split_mib": stats.get("inactive_split_bytes.all.current", 0) / mib,
        "largest_new_block_mib": lo * 64,
        "oom_retries": int(stats.get("num_alloc_retries", 0)),
    }


def run(expandable: bool, cfg: dict, timeout_s: float = 300) -> dict:
    env = dict(os.environ)
    env["PYTORCH_CUDA_ALLOC_CONF"] = f"expandable_segments:{'True' if expandable else 'False'}"
    p = subprocess.run(
        [sys.executable, "-m", "workloads.gpu.fragmentation", json.dumps(cfg)],
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout_s,
        check=False,
    )
    lines = [ln for ln in p.stdout.splitlines() if ln.startswith("{")]
    if p.returncode != 0 or not lines:
        raise RuntimeError(f"fragmentation pattern exited {p.returncode}: {p.stderr[-800:]}")
    return json.loads(lines[-1])


if __name__ == "__main__":
    print(json.dumps(pattern(json.loads(sys.argv[1]))), flush=True)
