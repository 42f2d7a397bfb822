"""d57 worker: pipeline parallelism (GPipe-style forward schedule) of a transformer stack split over two devices,
and data parallelism of the same stack, checked against the unsplit stack on one device.

Pipeline (model parallel): rank r holds layers [r*L/n, (r+1)*L/n); the batch is cut into M micro-batches; each
rank runs micro-batch i as soon as its input arrives (point-to-point send/recv) and sends the result on, so rank
r+1 works on micro-batch i while rank r works on i+1. The idle share of a device ("bubble") is (n-1)/(M+n-1) in
the ideal schedule: more micro-batches fill the pipeline, smaller ones use the device less efficiently.
Data parallel: every rank holds the whole stack and runs 1/n of the batch; no activation moves between ranks.
Reported per row: wall time for the whole batch (median of reps, from a barrier to the last rank's end), tokens/s,
weights held per rank (exact bytes of the tensors the rank keeps), peak device memory per rank (CUDA allocator; on
CPU not measurable per tensor, reported as n/a), and the max relative error of the output against the reference.
Prints harness JSON lines (cuda/include/harness.cuh format) from the last rank.
Usage: python3 -m workloads.parallel.pipeline [--quick] [--cpu] [--ranks N] [--micro 1,2,4,8]
  --cpu runs the ranks as CPU processes over gloo in fp32 (correctness path of the tests; timings indicative).
"""

from __future__ import annotations

import os
import statistics
import sys
import time

os.environ["NCCL_NVLS_ENABLE"] = "0"  # NVLink multicast can put shared GPUs out of service: never on
os.environ["TORCH_SYMM_MEM_DISABLE_MULTICAST"] = "1"

from workloads.parallel.launch import leave_group
from workloads.parallel.nccl_bench import emit
from workloads.parallel.tp import Shape, forward_ref, init_rank, weights

CASE = "d57"
TABLE_PP = "pipeline parallel: latency and throughput vs micro-batches"
TABLE_DP = "data parallel vs model (pipeline) parallel"


def shape(quick: bool, cpu: bool) -> Shape:
    """Four layers, as d57.e1 asks (two per device on two devices)."""
    if cpu:  # big enough that compute, not gloo's per-message cost, fills the stages (quick: the tests' size)
        return Shape(hidden=64, heads=4, layers=4, batch=8, seq=16) if quick else Shape(384, 6, 4, 8, 256)
    if quick:
        return Shape(hidden=1024, heads=16, layers=4, batch=8, seq=256)
    return Shape(hidden=4096, heads=32, layers=4, batch=16, seq=1024)


def check_split(s: Shape, n: int, micro: list[int]) -> None:
    """Whole layers per rank, and micro-batch counts that divide the batch (each micro-batch the same size)."""
    if s.layers % n:
        raise ValueError(f"--ranks {n}: must divide the {s.layers} layers")
    if s.batch % n:
        raise ValueError(f"--ranks {n}: must divide the batch of {s.batch} (data parallel splits it)")
    if bad := [m for m in micro if m < 1 or s.batch % m]:
        raise ValueError(f"--micro {bad}: each must divide the batch of {s.batch}")


def bubble(n: int, m: int) -> float:
    """Idle share of each device in the ideal GPipe forward schedule with n stages and m micro-batches."""
    return (n - 1) / (m + n - 1)


def _bytes(tensors) -> int:
    return sum(t.numel() * t.element_size() for t in tensors)


def worker(rank: int, n: int, quick: bool, cpu: bool, port: int, micro: list[int]) -> None:
    import torch
    import torch.distributed as dist
    import torch.nn.functional as nnf

    dev, dtype = init_rank(rank, n, cpu, port)

    def sync() -> None:
        if not cpu:
            torch.cuda.synchronize(dev)

    s = shape(quick, cpu)
    reps = 3 if cpu else 10
    full = [{k: v.to(dev, dtype) for k, v in layer.items()} for layer in weights(s, seed=57, torch=torch)]
    per = s.layers // n
    mine = full[rank * per : (rank + 1) * per]
    g = torch.Generator().manual_seed(570)
    x = torch.randn(s.batch, s.seq, s.hidden, generator=g).to(dev, dtype)
    last = rank == n - 1
    ref = forward_ref(x, full, s.heads, nnf) if last else None
    held_pp, held_dp = _bytes(t for w in mine for t in w.values()), _bytes(t for w in full for t in w.values())
    if not last:
        del full  # a pipeline stage keeps only its own layers (the reference lives on the last rank)
        if not cpu:
            torch.cuda.empty_cache()

    def timed(fn) -> tuple[float, object]:
        times, out = [], None
        for i in range(reps + 1):
            dist.barrier()
            sync()
            t0 = time.perf_counter()
            out = fn()
            sync()
            t = torch.tensor([time.perf_counter() - t0], dtype=torch.float64)
            dist.all_reduce(t, op=dist.ReduceOp.MAX)  # the batch is done when the slowest rank is
            if i:  # the first pass warms up allocators and kernels
                times.append(float(t))
        return statistics.median(times), out

    def pipeline(m: int):
        mbs = x.chunk(m) if rank == 0 else [torch.empty(s.batch // m, s.seq, s.hidden, device=dev, dtype=dtype)] * m
        outs, pending = [], []
        for i in range(m):
            a = mbs[i] if rank == 0 else mbs[i].clone()
            if rank > 0:
                dist.recv(a, src=rank - 1)
            for w in mine:
                a = a + _attn(a, w, s, nnf)
                a = a + nnf.gelu(nnf.layer_norm(a, (s.hidden,), weight=w["g2"]) @ w["w1"]) @ w["w2"]
            if last:
                outs.append(a)
            else:
                sync()
                pending.append(dist.isend(a.contiguous(), dst=rank + 1))
        for p in pending:
            p.wait()
        return torch.cat(outs) if last else None

    def data_parallel():
        part = x.chunk(n)[rank]
        y = forward_ref(part, full_dp, s.heads, nnf)
        return y

    tokens = s.batch * s.seq
    best: tuple[float, int] | None = None  # (latency, micro-batches) of the fastest pipeline row
    for m in micro:
        if not cpu:
            torch.cuda.reset_peak_memory_stats(dev)
        sec, y = timed(lambda m=m: pipeline(m))
        peak = torch.tensor([torch.cuda.max_memory_allocated(dev) if not cpu else 0], dtype=torch.float64)
        dist.all_reduce(peak, op=dist.ReduceOp.MAX)
        if best is None or sec < best[0]:
            best = (sec, m)
        if last:
            err = float(((y.float() - ref.float()).abs().max() / ref.float().abs().max()).item())
            emit(CASE, TABLE_PP, [
                ("devices", "", n), ("micro-batches", "", m), ("micro-batch size", "sequences", s.batch // m),
                ("latency", "ms", round(sec * 1e3, 3)), ("throughput", "tokens/s", round(tokens / sec, 1)),
                ("ideal bubble", "%", round(100 * bubble(n, m), 1)),
                ("weights per device", "MiB", round(held_pp / 2**20, 2)),
                ("peak memory per device", "MiB", round(float(peak) / 2**20, 1) if not cpu else "n/a"),
                ("max rel. error", "", err),
            ])  # fmt: skip
        dist.barrier()

    # data parallel: every rank needs the whole stack again (regenerated from the seed, same values)
    full_dp = [{k: v.to(dev, dtype) for k, v in layer.items()} for layer in weights(s, seed=57, torch=torch)]
    if not cpu:
        torch.cuda.reset_peak_memory_stats(dev)
    sec, y = timed(data_parallel)
    peak = torch.tensor([torch.cuda.max_memory_allocated(dev) if not cpu else 0], dtype=torch.float64)
    dist.all_reduce(peak, op=dist.ReduceOp.MAX)
    if last and best is not None:
        emit(CASE, TABLE_DP, [
            ("scheme", "", f"model parallel (pipeline, {best[1]} micro-batches)"), ("devices", "", n),
            ("latency", "ms", round(best[0] * 1e3, 3)), ("throughput", "tokens/s", round(tokens / best[0], 1)),
            ("weights per device", "MiB", round(held_pp / 2**20, 2)),
            ("peak memory per device", "MiB", "see pipeline table"), ("max rel. error", "", "see pipeline table"),
        ])  # fmt: skip
    if last:
        want = ref.chunk(n)[rank]
        err = float(((y.float() - want.float()).abs().max() / want.float().abs().max()).item())
        emit(CASE, TABLE_DP, [
            ("scheme", "", "data parallel"), ("devices", "", n), ("latency", "ms", round(sec * 1e3, 3)),
            ("throughput", "tokens/s", round(tokens / sec, 1)),
            ("weights per device", "MiB", round(held_dp / 2**20, 2)),
            ("peak memory per device", "MiB", round(float(peak) / 2**20, 1) if not cpu else "n/a"),
            ("max rel. error", "", err),
        ])  # fmt: skip
    leave_group()


def _attn(a, w, s: Shape, nnf):
    from workloads.parallel.tp import _attn as attn

    return attn(nnf.layer_norm(a, (s.hidden,), weight=w["g1"]), w, s.heads, nnf)


def main(argv: list[str]) -> int:
    import torch
    import torch.multiprocessing as mp

    cpu = "--cpu" in argv
    quick = "--quick" in argv
    avail = (os.cpu_count() or 2) if cpu else torch.cuda.device_count()
    n = int(argv[argv.index("--ranks") + 1]) if "--ranks" in argv else 2
    micro = [int(m) for m in argv[argv.index("--micro") + 1].split(",")] if "--micro" in argv else [1, 2, 4, 8]
    if n < 2 or n > max(avail, 2 if cpu else 0):
        print(f"--ranks {n}: need 2..{avail} {'processes' if cpu else 'GPUs'} (found {avail})", file=sys.stderr)
        return 3
    try:
        check_split(shape(quick, cpu), n, micro)
    except ValueError as exc:
        print(str(exc), file=sys.stderr)
        return 2
    port = 29700 + os.getpid() % 1000
    mp.spawn(worker, args=(n, quick, cpu, port, micro), nprocs=n, join=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
