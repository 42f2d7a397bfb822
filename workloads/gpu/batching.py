"""A dynamically batching GPU worker: client threads submit single requests; the worker takes up to `max_batch`
waiting requests (waiting at most `max_delay_ms` for the batch to fill) and runs them as one batch."""

from __future__ import annotations

import queue
import threading
import time
from dataclasses import dataclass

import numpy as np


@dataclass
class BatchRun:
    max_batch: int
    requests: int
    requests_per_s: float
    mean_batch: float
    p50_ms: float
    p99_ms: float


def serve(
    model, dim: int, device: str, max_batch: int, clients: int, seconds: float, max_delay_ms: float = 2.0, dtype=None
) -> BatchRun:
    import torch

    dtype = dtype or (torch.float16 if device == "cuda" else torch.float32)
    q: queue.Queue = queue.Queue()
    stop = threading.Event()
    sizes: list[int] = []

    def worker() -> None:
        while not stop.is_set():
            try:
                first = q.get(timeout=0.05)
            except queue.Empty:
                continue
            items = [first]
            deadline = time.perf_counter() + max_delay_ms / 1e3
            while len(items) < max_batch and (left := deadline - time.perf_counter()) > 0:
                try:
                    items.append(q.get(timeout=left))
                except queue.Empty:
                    break
            x = torch.stack([it[0] for it in items]).to(device, dtype, non_blocking=True)
            with torch.no_grad():
                y = model(x).float().cpu()
            sizes.append(len(items))
            for (_, ev, box), row in zip(items, y, strict=True):
                box.append(row)
                ev.set()

    lat: list[float] = []
    lock = threading.Lock()

    def client(seed: int) -> None:
        x = torch.from_numpy(np.random.default_rng(seed).standard_normal(dim).astype(np.float32))
        while not stop.is_set():
            ev, box = threading.Event(), []
            t0 = time.perf_counter()
            q.put((x, ev, box))
            while not ev.wait(timeout=0.05):  # returns as soon as the answer is set; the poll only notices a stop
                if stop.is_set() or time.perf_counter() - t0 > 10:
                    return  # at the stop the worker leaves queued requests unanswered: nothing to wait for
            with lock:
                lat.append((time.perf_counter() - t0) * 1e3)

    w = threading.Thread(target=worker, daemon=True)
    w.start()
    cs = [threading.Thread(target=client, args=(k,), daemon=True) for k in range(clients)]
    for c in cs:
        c.start()
    time.sleep(0.5)  # warm-up, not counted
    with lock:
        lat.clear()
    sizes.clear()
    time.sleep(seconds)
    with lock:
        done = list(lat)
        bs = list(sizes)
    stop.set()
    for c in cs:
        c.join(timeout=5)
    w.join(timeout=5)
    a = np.asarray(done) if done else np.asarray([float("nan")])
    return BatchRun(
        max_batch,
        len(done),
        len(done) / seconds,
        float(np.mean(bs)) if bs else 0.0,
        float(np.percentile(a, 50)),
        float(np.percentile(a, 99)),
    )
