"""d24 worker: NCCL collectives over message sizes on every local GPU, one process per GPU.

NCCL is called directly through CuPy's bindings (cupy.cuda.nccl) and, on the same buffers and sizes, through
torch.distributed (its NCCL backend) as the check. Prints harness JSON lines (cuda/include/harness.cuh format).
Usage: python3 -m workloads.parallel.nccl_bench [--quick] [--ranks N] [--ops all_reduce,...] [--no-overlap]
"""

from __future__ import annotations

import json
import os
import statistics
import sys

# NVLink multicast (NVLS) can put shared GPUs out of service: keep it off in every process this starts
os.environ.setdefault("NCCL_NVLS_ENABLE", "0")
os.environ["NCCL_NVLS_ENABLE"] = "0"
os.environ["TORCH_SYMM_MEM_DISABLE_MULTICAST"] = "1"

from workloads.parallel.busbw import OPS, algbw_gbs, bus_factor
from workloads.parallel.launch import leave_group


def emit(case: str, table: str, cols: list[tuple[str, str, object]]) -> None:
    print(
        json.dumps(
            {"case": case, "table": table, "columns": [[c, u] for c, u, _ in cols], "row": [v for _, _, v in cols]}
        ),
        flush=True,
    )


def iterations(size_bytes: int) -> int:
    """Timed repetitions for a message size: the same on every rank (a collective called a different number of
    times on different ranks deadlocks, which an adaptive 'until 0.2 s' loop did on the first 2-GPU run)."""
    return max(5, min(100, (1 << 31) // max(size_bytes, 1)))


def _time(fn, stream, torch, iters: int) -> float:
    """Median seconds of fn() on `stream`, event-timed, after warm-up; `iters` must match across ranks."""
    for _ in range(3):
        fn()
    torch.cuda.synchronize()
    times: list[float] = []
    for _ in range(iters):
        a, b = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        a.record(stream)
        fn()
        b.record(stream)
        b.synchronize()
        times.append(a.elapsed_time(b) / 1e3)
    return statistics.median(times)


def worker(rank: int, nranks: int, quick: bool, port: int, ops: tuple[str, ...], with_overlap: bool) -> None:
    import torch
    import torch.distributed as dist
    from cupy.cuda import nccl

    torch.cuda.set_device(rank)
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    dist.init_process_group("nccl", rank=rank, world_size=nranks, device_id=torch.device("cuda", rank))
    uid = [nccl.get_unique_id() if rank == 0 else None]
    dist.broadcast_object_list(uid, src=0)
    comm = nccl.NcclCommunicator(nranks, uid[0], rank)
    stream = torch.cuda.Stream()
    sizes = [1 << p for p in range(10, 23 if quick else 31, 2)]  # 1 KiB .. 1 GiB (bytes, float32)
    for op in ops:
        for size in sizes:
            cu, th, check = _collective(op, size // 4, rank, nranks, comm, stream, torch, dist, nccl)
            with torch.cuda.stream(stream):
                cu()
            stream.synchronize()
            ok = check()
            t_cu = _time(cu, stream, torch, iterations(size))
            with torch.cuda.stream(stream):
                t_th = _time(th, stream, torch, iterations(size))
            ts = torch.tensor([t_cu, t_th], device="cuda")
            dist.all_reduce(ts, op=dist.ReduceOp.MAX)  # the slowest rank defines the collective's time
            oks = torch.tensor([1.0 if ok else 0.0], device="cuda")
            dist.all_reduce(oks, op=dist.ReduceOp.MIN)
            if rank == 0:
                t_cu, t_th = ts.tolist()
                f = bus_factor(op, nranks)
                emit(
                    "collectives",
                    "NCCL collectives vs message size",
                    [
                        ("op", "", op),
                        ("GPUs", "", nranks),
                        ("size", "B", size),
                        ("time (NCCL via CuPy)", "us", t_cu * 1e6),
                        ("algbw", "GB/s", algbw_gbs(size, t_cu)),
                        ("busbw", "GB/s", algbw_gbs(size, t_cu) * f),
                        ("time (torch.distributed)", "us", t_th * 1e6),
                        ("busbw (torch.distributed)", "GB/s", algbw_gbs(size, t_th) * f),
                        ("correct", "", bool(oks.item() == 1.0)),
                    ],
                )
            torch.cuda.empty_cache()
    if with_overlap:
        overlap(rank, nranks, quick, dist, torch)
    leave_group()


def _collective(op: str, count: int, rank: int, nranks: int, comm, stream, torch, dist, nccl):
    """(NCCL call, torch.distributed call, correctness check) for one op; count = elements of the op's size."""
    per = count // nranks
    big = torch.full((count,), float(rank + 1), device="cuda")
    small = torch.full((per,), float(rank + 1), device="cuda")
    f32, total, s = nccl.NCCL_FLOAT32, nranks * (nranks + 1) / 2, stream.cuda_stream
    # NCCL writes into `out` (poisoned: every element must be written, then checked); torch into `scratch`
    if op == "all_reduce":
        out, scratch = torch.full_like(big, float("nan")), big.clone()

        def cu() -> None:
            comm.allReduce(big.data_ptr(), out.data_ptr(), count, f32, nccl.NCCL_SUM, s)

        def th() -> None:
            dist.all_reduce(scratch, op=dist.ReduceOp.SUM)

        return cu, th, lambda: bool(torch.all(out == total))
    if op == "all_gather":
        out, scratch = torch.full_like(big, float("nan")), torch.empty_like(big)
        want = torch.arange(1, nranks + 1, device="cuda", dtype=torch.float32).repeat_interleave(per)

        def cu() -> None:
            comm.allGather(small.data_ptr(), out.data_ptr(), per, f32, s)

        def th() -> None:
            dist.all_gather_into_tensor(scratch, small)

        return cu, th, lambda: bool(torch.equal(out, want))
    out, scratch = torch.full_like(small, float("nan")), torch.empty_like(small)

    def cu() -> None:
        comm.reduceScatter(big.data_ptr(), out.data_ptr(), per, f32, nccl.NCCL_SUM, s)

    def th() -> None:
        dist.reduce_scatter_tensor(scratch, big)

    return cu, th, lambda: bool(torch.all(out == total))


def overlap(rank: int, nranks: int, quick: bool, dist, torch) -> None:
    """d24.e4: an all-reduce on NCCL's stream alongside a matmul on the compute stream, vs each alone."""
    n = 2048 if quick else 8192
    a = torch.randn(n, n, device="cuda", dtype=torch.bfloat16)
    grad = torch.randn((64 << 20) // 4 if not quick else 1 << 20, device="cuda")
    comp = torch.cuda.Stream()

    def matmuls() -> None:
        with torch.cuda.stream(comp):
            for _ in range(4):
                a @ a

    def wall(fn) -> float:
        import time

        for _ in range(2):
            fn()
        torch.cuda.synchronize()
        dist.barrier()
        ts = []
        for _ in range(5):
            t = time.perf_counter()
            fn()
            torch.cuda.synchronize()
            ts.append(time.perf_counter() - t)
        return statistics.median(ts)

    def comm() -> None:
        dist.all_reduce(grad, async_op=True).wait()

    def both() -> None:
        work = dist.all_reduce(grad, async_op=True)  # NCCL runs on its own stream
        matmuls()
        work.wait()

    t_c, t_m, t_b = wall(comm), wall(matmuls), wall(both)
    if rank == 0:
        hidden = (t_c + t_m - t_b) / min(t_c, t_m) if min(t_c, t_m) > 0 else float("nan")
        for what, t in (
            ("all-reduce alone (256 MiB fp32)", t_c),
            (f"4 bf16 matmuls {n}^3 alone", t_m),
            ("both, on two streams", t_b),
            ("sum of the two alone", t_c + t_m),
        ):
            emit(
                "overlap",
                "communication/compute overlap",
                [
                    ("what", "", what),
                    ("GPUs", "", nranks),
                    ("time", "ms", t * 1e3),
                    ("overlap (hidden share of the shorter)", "%", 100 * hidden),
                ],
            )


def main(argv: list[str]) -> int:
    import torch
    import torch.multiprocessing as mp

    quick = "--quick" in argv
    nranks = int(argv[argv.index("--ranks") + 1]) if "--ranks" in argv else torch.cuda.device_count()
    if nranks < 2:
        print(f"need at least 2 GPUs, found {nranks}", file=sys.stderr)
        return 3
    ops = tuple(argv[argv.index("--ops") + 1].split(",")) if "--ops" in argv else OPS
    if bad := [o for o in ops if o not in OPS]:
        print(f"--ops {','.join(bad)}: allowed values are {', '.join(OPS)}", file=sys.stderr)
        return 2
    port = 29500 + os.getpid() % 1000
    mp.spawn(worker, args=(nranks, quick, port, ops, "--no-overlap" not in argv), nprocs=nranks, join=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
