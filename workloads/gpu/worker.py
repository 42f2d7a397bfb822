"""A GPU client process for the sharing and placement experiments: small inference requests in a closed loop.

`python -m workloads.gpu.worker '<json>'` with keys: seconds, batch, dim, layers, start_at (epoch s, so several
clients start timing together), cpu_prep (elements of host-side preprocessing per request), gpu_prep (true: the
request's raw uint8 input is copied to the GPU and normalised there instead), threads, window_s (a soak: per-window
summaries instead of every latency, see windows()).
Prints one JSON line: per-request latencies (ms), the request count, the GPU memory PyTorch reserved (MiB) and how
late after start_at it began timing (s; 0 when it was ready in time).
"""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Callable
from typing import Any


def main(cfg: dict) -> dict:
    import numpy as np
    import torch

    torch.set_num_threads(int(cfg.get("threads", 1)))
    dim, layers, batch = int(cfg.get("dim", 1024)), int(cfg.get("layers", 4)), int(cfg.get("batch", 1))
    torch.manual_seed(0)
    mods = []
    for _ in range(layers):  # built on the GPU in FP16: a large model's CPU-side init would outlast the start-up lead
        mods += [torch.nn.Linear(dim, dim, device="cuda", dtype=torch.float16), torch.nn.ReLU()]
    model = torch.nn.Sequential(*mods).eval()
    prep = int(cfg.get("cpu_prep", 0))
    raw = np.random.default_rng(0).integers(0, 255, size=max(prep, batch * dim), dtype=np.uint8)
    host = torch.empty(batch, dim, dtype=torch.float16).pin_memory()
    # gpu_prep: the raw uint8 input goes to the GPU as it is (a quarter of FP32's bytes, half of FP16's) and is
    # normalised there, instead of on the host before the copy
    gpu_prep = bool(cfg.get("gpu_prep", False))
    raw_host = torch.from_numpy(raw[: batch * dim].reshape(batch, dim).copy()).pin_memory()

    def request() -> None:
        if gpu_prep:
            r = raw_host.cuda(non_blocking=True)
            x = ((r.float() - 127.5) / 58.0).half()  # the same normalisation, on the device
        else:
            if prep:
                v = (raw[:prep].astype(np.float32) - 127.5) / 58.0  # host-side normalisation, as image preprocessing
                host.copy_(torch.from_numpy(v[: batch * dim].reshape(batch, dim)))
            x = host.cuda(non_blocking=True)
        with torch.no_grad():
            y = model(x)
        y.float().sum().item()  # the response goes back to the host

    for _ in range(20):
        request()
    start_at = float(cfg.get("start_at", 0))
    while time.time() < start_at:
        time.sleep(0.001)
    late_s = max(0.0, time.time() - start_at) if start_at else 0.0  # ready only after the common start
    seconds = float(cfg.get("seconds", 3))
    if cfg.get("window_s"):
        wins = windows(request, seconds, float(cfg["window_s"]), torch)
        out: dict = {"requests": sum(w["requests"] for w in wins), "latencies_ms": [], "windows": wins}
    else:
        lat = []
        t_end = time.perf_counter() + seconds
        while (t0 := time.perf_counter()) < t_end:
            request()
            lat.append((time.perf_counter() - t0) * 1e3)
        out = {"requests": len(lat), "latencies_ms": lat}
    return {**out, "seconds": seconds, "reserved_mib": torch.cuda.memory_reserved() / 2**20, "late_s": late_s}


def windows(request: Callable[[], None], seconds: float, window_s: float, torch: Any) -> list[dict]:
    """A closed loop of `request` for `seconds`, summarised per `window_s` window as it goes (only the current
    window's latencies are kept, so a long run does not grow this process): requests, errors (a request that raised),
    exact p50/p99 of the successful ones, served req/s, and at the window's end the memory PyTorch allocated and
    reserved, this process' RSS and its open file descriptors."""
    from workloads.cluster.timeline import nearest_rank

    page = os.sysconf("SC_PAGE_SIZE")
    out: list[dict] = []
    start = time.perf_counter()
    end = start + seconds
    lat: list[float] = []
    errors = 0

    def close(lo: float, hi: float) -> None:
        nonlocal lat, errors
        with open("/proc/self/statm") as f:
            rss = int(f.read().split()[1]) * page
        out.append({
            "start_s": lo - start, "requests": len(lat) + errors, "errors": errors,
            "p50_ms": nearest_rank(lat, 50), "p99_ms": nearest_rank(lat, 99), "ok_rps": len(lat) / (hi - lo),
            "allocated_mib": torch.cuda.memory_allocated() / 2**20,
            "reserved_mib": torch.cuda.memory_reserved() / 2**20,
            "rss_mib": rss / 2**20, "fds": len(os.listdir("/proc/self/fd")),
        })  # fmt: skip
        lat, errors = [], 0

    lo = start
    while (t0 := time.perf_counter()) < end:
        if t0 >= lo + window_s:
            close(lo, lo + window_s)
            lo += window_s
        try:
            request()
            lat.append((time.perf_counter() - t0) * 1e3)
        except Exception:  # noqa: BLE001 - a soak counts failures and goes on
            errors += 1
    close(lo, min(lo + window_s, end))
    return out


if __name__ == "__main__":
    print(json.dumps(main(json.loads(sys.argv[1]))), flush=True)
