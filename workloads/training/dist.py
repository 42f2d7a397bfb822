"""Distributed training next to inference, on CPU processes over torch.distributed (gloo) (d45).

  python -m workloads.training.dist dp    --world 1,2 [--quick]   data-parallel training of an MLP on digits
  python -m workloads.training.dist sync  --world 1,2,4,8 --floats N [--schemes ps,allreduce] [--quick]
                                                                   one gradient synchronisation per step, two ways:
                                                                   a parameter server (rank 0) vs gloo's all-reduce
  python -m workloads.training.dist infer [--quick]                the trained MLP's inference latency per batch

Each prints harness JSON lines (workloads/kernels/jsonl.py reads them): rows and notes, nothing else on stdout.
Every process runs one intra-op thread, so W workers on a host with fewer cores share them (the rows say how many).
"""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Callable
from typing import Any

from ailab.contract.ports import free_port
from workloads.parallel.launch import leave_group

HIDDEN = 256
LR = 0.1


def emit(case: str, table: str, cols: list[tuple[str, str, object]]) -> None:
    row = {"case": case, "table": table, "columns": [[c, u] for c, u, _ in cols], "row": [v for _, _, v in cols]}
    print(json.dumps(row), flush=True)


def note(case: str, text: str) -> None:
    print(json.dumps({"case": case, "note": text}), flush=True)


def digits() -> tuple[Any, Any, Any, Any]:
    """sklearn's bundled digits (no download), scaled to [0, 1], split 80/20 with a fixed seed."""
    import numpy as np
    import torch
    from sklearn.datasets import load_digits

    x, y = load_digits(return_X_y=True)
    rng = np.random.default_rng(0)
    idx = rng.permutation(len(x))
    x, y = x[idx] / 16.0, y[idx]
    cut = int(0.8 * len(x))
    t = torch.tensor
    return t(x[:cut]).float(), t(y[:cut]), t(x[cut:]).float(), t(y[cut:])


def mlp() -> Any:
    import torch
    from torch import nn

    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(64, HIDDEN), nn.ReLU(), nn.Linear(HIDDEN, HIDDEN), nn.ReLU(), nn.Linear(HIDDEN, 10))


def shard(n: int, rank: int, world: int) -> slice:
    """Rank's equal share of n items (n divisible by world)."""
    per = n // world
    return slice(rank * per, (rank + 1) * per)


def train(rank: int, world: int, global_batch: int, epochs: int, sync: Callable[[Any], float] | None) -> dict[str, Any]:
    """SGD on the rank's shard of every global batch; `sync` averages the gradients (returns seconds spent).
    With equal shards, averaging per-rank mean gradients equals the full-batch mean gradient: every world size
    follows the same trajectory up to float rounding."""
    import torch
    import torch.nn.functional as F  # noqa: N812

    xtr, ytr, xte, yte = digits()
    model = mlp()
    opt = torch.optim.SGD(model.parameters(), lr=LR)
    steps = len(xtr) // global_batch
    comm = compute = 0.0
    t0 = time.perf_counter()
    for _ in range(epochs):
        for s in range(steps):
            batch = slice(s * global_batch, (s + 1) * global_batch)
            part = shard(global_batch, rank, world)
            xb, yb = xtr[batch][part], ytr[batch][part]
            c0 = time.perf_counter()
            opt.zero_grad()
            F.cross_entropy(model(xb), yb).backward()
            compute += time.perf_counter() - c0
            if sync is not None:
                comm += sync(model)
            opt.step()
    wall = time.perf_counter() - t0
    with torch.no_grad():
        acc = float((model(xte).argmax(1) == yte).float().mean())
    flat = torch.cat([p.detach().reshape(-1) for p in model.parameters()])
    return {"wall": wall, "comm": comm, "compute": compute, "steps": steps * epochs, "acc": acc, "flat": flat}


def _init(rank: int, world: int, port: int) -> None:
    import torch
    import torch.distributed as dist

    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=world)


def _allreduce_grads(model: Any) -> float:
    import torch
    import torch.distributed as dist

    t0 = time.perf_counter()
    grads = [p.grad for p in model.parameters()]
    flat = torch.cat([g.reshape(-1) for g in grads])  # one bucket, as DDP does for a model this small
    dist.all_reduce(flat)
    flat /= dist.get_world_size()
    off = 0
    for g in grads:
        g.copy_(flat[off : off + g.numel()].view_as(g))
        off += g.numel()
    return time.perf_counter() - t0


def dp_worker(rank: int, world: int, port: int, global_batch: int, epochs: int, ref_path: str) -> None:
    import torch
    import torch.distributed as dist

    _init(rank, world, port)
    r = train(rank, world, global_batch, epochs, _allreduce_grads if world > 1 else None)
    gathered = [torch.zeros_like(r["flat"]) for _ in range(world)]
    dist.all_gather(gathered, r["flat"])
    if rank == 0:
        spread = max(float((g - r["flat"]).abs().max()) for g in gathered)
        vs_ref: float | None = None  # the 1-worker run is the reference
        if world == 1:
            torch.save(r["flat"], ref_path)
        elif os.path.exists(ref_path):
            vs_ref = float((torch.load(ref_path) - r["flat"]).abs().max())
        samples = r["steps"] * global_batch
        emit(
            f"dp-w{world}",
            "data-parallel training",
            [
                ("workers", "", world),
                ("global batch", "samples", global_batch),
                ("steps", "", r["steps"]),
                ("samples/s", "samples/s", round(samples / r["wall"], 1)),
                ("step", "ms", round(r["wall"] / r["steps"] * 1e3, 3)),
                ("compute per step", "ms", round(r["compute"] / r["steps"] * 1e3, 3)),
                ("all-reduce per step", "ms", round(r["comm"] / r["steps"] * 1e3, 3)),
                ("test accuracy", "", round(r["acc"], 4)),
                ("max |param diff| across ranks", "", spread),
                ("max |param diff| vs 1 worker", "", vs_ref),
            ],
        )
    leave_group()


def sync_worker(rank: int, world: int, port: int, mode: str, floats: int, steps: int) -> None:
    """One synchronisation per step of a `floats`-long fp32 gradient. 'ps': rank 0 is a parameter server that
    receives every worker's gradient, averages and sends the new parameters back (ranks 1..W are workers, so the
    group has W+1 processes). 'allreduce': the W workers all-reduce among themselves (gloo's ring)."""
    import torch
    import torch.distributed as dist

    _init(rank, world, port)
    grad = torch.full((floats,), float(rank + 1))
    params = torch.zeros(floats)
    workers = world - 1 if mode == "ps" else world
    times: list[float] = []
    server_busy = 0.0
    for step in range(steps + 2):  # the first two steps warm the connections up and are not counted
        dist.barrier()
        t0 = time.perf_counter()
        if mode == "allreduce":
            dist.all_reduce(grad)
            grad /= workers
        elif rank == 0:
            acc = torch.zeros(floats)
            buf = torch.empty(floats)
            for w in range(1, world):
                dist.recv(buf, src=w)
                acc += buf
            params -= LR * acc / workers
            for w in range(1, world):
                dist.send(params, dst=w)
        else:
            dist.send(grad, dst=0)
            dist.recv(params, src=0)
        dt = time.perf_counter() - t0
        if step >= 2:
            times.append(dt)
            if rank == 0 and mode == "ps":
                server_busy += dt
    mine = torch.tensor([sum(times) / len(times)])
    slowest = mine.clone()
    dist.all_reduce(slowest, op=dist.ReduceOp.MAX)
    if rank == 0:
        mb = floats * 4 / 2**20
        per_step = float(slowest)
        # bytes through the busiest endpoint per step: the server takes W gradients in and sends W copies out;
        # a ring all-reduce sends and receives 2(W-1)/W of the buffer at every rank
        hot = 2 * workers * mb if mode == "ps" else (2 * (workers - 1) / workers * mb * 2 if workers > 1 else 0.0)
        emit(
            f"{mode}-w{workers}",
            "gradient synchronisation",
            [
                ("scheme", "", "parameter server" if mode == "ps" else "all-reduce (gloo ring)"),
                ("workers", "", workers),
                ("processes", "", world),
                ("gradient", "MiB", round(mb, 2)),
                ("sync per step", "ms", round(per_step * 1e3, 3)),
                ("traffic at the busiest process per step", "MiB", round(hot, 2)),
                ("effective bandwidth at the busiest process", "MiB/s", round(hot / per_step, 1) if hot else 0.0),
            ],
        )
    leave_group()


def infer(quick: bool) -> None:
    """The trained MLP answering requests of growing batch size: latency per call (nearest-rank p50/p99), next to
    what one training step over the same batch costs (forward + backward + update)."""
    import numpy as np
    import torch
    import torch.nn.functional as F  # noqa: N812

    torch.set_num_threads(1)
    xtr, ytr, _, _ = digits()
    model = mlp()
    opt = torch.optim.SGD(model.parameters(), lr=LR)
    reps = 50 if quick else 400
    for b in (1, 4, 16, 64, 256):
        x, y = xtr[:b], ytr[:b]
        lat = []
        model.eval()
        with torch.inference_mode():
            for _ in range(10):
                model(x)
            for _ in range(reps):
                t0 = time.perf_counter()
                model(x)
                lat.append(time.perf_counter() - t0)
        model.train()
        tr = []
        for i in range(10 + reps // 4):
            t0 = time.perf_counter()
            opt.zero_grad()
            F.cross_entropy(model(x), y).backward()
            opt.step()
            if i >= 10:
                tr.append(time.perf_counter() - t0)
        a = np.sort(np.array(lat) * 1e3)
        p50, p99 = (float(np.percentile(a, q, method="inverted_cdf")) for q in (50, 99))
        step = float(np.percentile(np.array(tr) * 1e3, 50, method="inverted_cdf"))
        emit(
            f"infer-b{b}",
            "inference vs training step",
            [
                ("batch", "samples", b),
                ("inference p50", "ms", round(p50, 4)),
                ("inference p99", "ms", round(p99, 4)),
                ("inference throughput", "samples/s", round(b / (p50 / 1e3), 1)),
                ("training step p50", "ms", round(step, 4)),
                ("training step / inference", "x", round(step / p50, 2)),
            ],
        )


def _arg(argv: list[str], name: str, default: str) -> str:
    return argv[argv.index(name) + 1] if name in argv else default


def main(argv: list[str]) -> int:
    import tempfile

    import torch.multiprocessing as mp

    if not argv or argv[0] not in ("dp", "sync", "infer"):
        print("usage: python -m workloads.training.dist dp|sync|infer [options]", file=sys.stderr)
        return 2
    quick = "--quick" in argv
    cores = os.cpu_count() or 1
    if argv[0] == "infer":
        infer(quick)
        return 0
    worlds = [int(w) for w in _arg(argv, "--world", "1,2").split(",")]
    if argv[0] == "dp":
        batch, epochs = (64, 2) if quick else (128, 20)
        with tempfile.TemporaryDirectory() as tmp:
            ref = os.path.join(tmp, "ref.pt")
            for w in sorted(worlds):  # 1 first: its parameters are the reference
                mp.spawn(dp_worker, args=(w, free_port(), batch, epochs, ref), nprocs=w, join=True)
        note("dp", f"{cores} CPU core(s); one intra-op thread per process; digits 8x8, MLP 64-{HIDDEN}-{HIDDEN}-10")
        return 0
    floats = int(_arg(argv, "--floats", str(1 << 20)))
    schemes = _arg(argv, "--schemes", "ps,allreduce").split(",")
    steps = 5 if quick else 30
    for w in worlds:
        if "ps" in schemes:
            mp.spawn(sync_worker, args=(w + 1, free_port(), "ps", floats, steps), nprocs=w + 1, join=True)
        if "allreduce" in schemes:
            mp.spawn(sync_worker, args=(w, free_port(), "allreduce", floats, steps), nprocs=w, join=True)
    note("sync", f"{cores} CPU core(s); {steps} timed steps per row (mean), the slowest process's time counted")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
