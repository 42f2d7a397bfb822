"""d80 worker: tensor parallelism and sequence parallelism of a transformer layer stack (Megatron-LM style), one
process per GPU, checked against the same stack on one device.

Tensor parallel (TP): attention heads and the MLP's hidden units are split over the ranks (Q/K/V and fc1 by
columns, the output projection and fc2 by rows), so each layer needs two all-reduces of the activations.
Sequence parallel (SP, on top of TP): the layer norms and residual adds run on 1/n of the sequence; the
all-reduces become an all-gather along the sequence before each column-parallel block and a reduce-scatter after
each row-parallel block: the same bytes moved, activations outside the blocks stored once instead of n times.
Every collective is timed with CUDA events on the compute stream (wall clock on CPU), giving the
communication/computation split. Prints harness JSON lines (cuda/include/harness.cuh format) from rank 0.
Usage: python3 -m workloads.parallel.tp [--quick] [--ranks N] [--modes tp,sp] [--cpu]
  --modes which parallel forms to check and time (default both; the 1-device reference always runs on rank 0).
  --cpu runs the ranks as CPU processes over gloo in fp32 (the correctness path tests use; timings meaningless).
"""

from __future__ import annotations

import math
import os
import statistics
import sys
import time
from dataclasses import dataclass

os.environ["NCCL_NVLS_ENABLE"] = "0"  # NVLink multicast can put shared GPUs out of service: never on
os.environ["TORCH_SYMM_MEM_DISABLE_MULTICAST"] = "1"

from workloads.parallel.launch import leave_group
from workloads.parallel.nccl_bench import emit

CASE = "d80"
MODES = {"tp": "tensor parallel", "sp": "tensor + sequence parallel"}  # --modes key -> mode named in the rows


@dataclass(frozen=True)
class Shape:
    hidden: int
    heads: int
    layers: int
    batch: int
    seq: int

    def check(self, nranks: int) -> None:
        """Each rank must get whole heads, an equal share of the MLP, and an equal share of the sequence."""
        checks = (("heads", self.heads, nranks), ("seq", self.seq, nranks), ("hidden", self.hidden, self.heads))
        for field, value, div in checks:
            if value % div:
                raise ValueError(f"shape.{field} {value}: must be a multiple of {div}")


def shapes(quick: bool, cpu: bool) -> list[Shape]:
    if cpu:
        return [Shape(hidden=64, heads=4, layers=2, batch=2, seq=16)]
    if quick:
        return [Shape(hidden=1024, heads=16, layers=2, batch=2, seq=256)]
    # a 2.5B-parameter-class layer width; decode-like (short) and prefill-like (long) activations
    return [
        Shape(hidden=4096, heads=32, layers=4, batch=1, seq=128),
        Shape(hidden=4096, heads=32, layers=4, batch=4, seq=2048),
    ]


def weights(s: Shape, seed: int, torch) -> list[dict]:
    """Full (unsharded) weights of every layer, generated on the CPU from `seed` so all ranks hold the same."""
    g = torch.Generator().manual_seed(seed)
    d, f = s.hidden, 4 * s.hidden

    def w(i: int, o: int):
        return torch.randn(i, o, generator=g) / math.sqrt(i)

    return [
        {"wq": w(d, d), "wk": w(d, d), "wv": w(d, d), "wo": w(d, d), "w1": w(d, f), "w2": w(f, d),
         "g1": 1 + 0.1 * torch.randn(d, generator=g), "g2": 1 + 0.1 * torch.randn(d, generator=g)}
        for _ in range(s.layers)
    ]  # fmt: skip


def shard(layer: dict, rank: int, n: int) -> dict:
    """This rank's part: Q/K/V/fc1 columns (whole heads / hidden units), out-proj/fc2 rows; norms replicated."""
    d = layer["wq"].shape[0]
    cols = slice(rank * d // n, (rank + 1) * d // n)
    f = layer["w1"].shape[1]
    hid = slice(rank * f // n, (rank + 1) * f // n)
    return {
        "wq": layer["wq"][:, cols], "wk": layer["wk"][:, cols], "wv": layer["wv"][:, cols], "wo": layer["wo"][cols, :],
        "w1": layer["w1"][:, hid], "w2": layer["w2"][hid, :], "g1": layer["g1"], "g2": layer["g2"],
    }  # fmt: skip


class Comm:
    """Collectives over the process group, each timed (CUDA events on the current stream, or wall clock)."""

    def __init__(self, dist, torch, n: int, cuda: bool) -> None:
        self.dist, self.torch, self.n, self.cuda = dist, torch, n, cuda
        self.pending: list = []
        self.cpu_s = 0.0

    def _timed(self, fn):
        if self.cuda:
            a, b = self.torch.cuda.Event(enable_timing=True), self.torch.cuda.Event(enable_timing=True)
            a.record()
            out = fn()
            b.record()
            self.pending.append((a, b))
            return out
        t = time.perf_counter()
        out = fn()
        self.cpu_s += time.perf_counter() - t
        return out

    def seconds(self) -> float:
        """Communication time since the last call (synchronises)."""
        if self.cuda:
            self.torch.cuda.synchronize()
            s = sum(a.elapsed_time(b) for a, b in self.pending) / 1e3
        else:
            s = self.cpu_s
        self.pending, self.cpu_s = [], 0.0
        return s

    def all_reduce(self, x):
        return self._timed(lambda: (self.dist.all_reduce(x), x)[1])

    def all_gather_seq(self, x):
        """Sequence-first [S/n, B, D] on each rank -> [S, B, D] (rank r's rows at r*S/n...): one
        all_gather_into_tensor into a contiguous buffer, no reordering copy."""

        def go():
            out = self.torch.empty((self.n * x.shape[0], *x.shape[1:]), dtype=x.dtype, device=x.device)
            if self.dist.get_backend() == "gloo":  # gloo: the list form, concatenated
                parts = [self.torch.empty_like(x) for _ in range(self.n)]
                self.dist.all_gather(parts, x.contiguous())
                return self.torch.cat(parts, dim=0, out=out)
            self.dist.all_gather_into_tensor(out, x.contiguous())
            return out

        return self._timed(go)

    def reduce_scatter_seq(self, x):
        """[S, B, D] partial sums on each rank -> this rank's [S/n, B, D] rows of the total (reduce_scatter_tensor)."""

        def go():
            if self.dist.get_backend() == "gloo":  # gloo has no reduce-scatter: all-reduce, keep our rows
                total = x.contiguous()
                self.dist.all_reduce(total)
                return total.chunk(self.n, dim=0)[self.dist.get_rank()].contiguous()
            out = self.torch.empty((x.shape[0] // self.n, *x.shape[1:]), dtype=x.dtype, device=x.device)
            self.dist.reduce_scatter_tensor(out, x.contiguous())
            return out

        return self._timed(go)


def _attn(a, w, heads_local: int, nnf, seq_first: bool = False):
    """Causal attention of this rank's heads; a is [B, S, D], or [S, B, D] when seq_first (the SP layout)."""
    if seq_first:
        s, b, _ = a.shape
        q, k, v = ((a @ w[n]).view(s, b, heads_local, -1).permute(1, 2, 0, 3) for n in ("wq", "wk", "wv"))
        o = nnf.scaled_dot_product_attention(q, k, v, is_causal=True)  # [B, h, S, Dh]
        return o.permute(2, 0, 1, 3).reshape(s, b, -1) @ w["wo"]
    b, s, _ = a.shape
    q, k, v = ((a @ w[n]).view(b, s, heads_local, -1).transpose(1, 2) for n in ("wq", "wk", "wv"))  # [B, h, S, Dh]
    o = nnf.scaled_dot_product_attention(q, k, v, is_causal=True)
    return o.transpose(1, 2).reshape(b, s, -1) @ w["wo"]


def _norm(x, g, nnf):
    return nnf.layer_norm(x, (x.shape[-1],), weight=g)


def forward_ref(x, layers: list[dict], heads: int, nnf):
    """The whole stack on one device: pre-norm attention and MLP blocks with residuals."""
    for w in layers:
        x = x + _attn(_norm(x, w["g1"], nnf), w, heads, nnf)
        x = x + nnf.gelu(_norm(x, w["g2"], nnf) @ w["w1"]) @ w["w2"]
    return x


def forward_tp(x, layers: list[dict], heads_local: int, comm: Comm, nnf):
    """TP: full sequence on every rank; partial block outputs summed by an all-reduce."""
    for w in layers:
        x = x + comm.all_reduce(_attn(_norm(x, w["g1"], nnf), w, heads_local, nnf))
        x = x + comm.all_reduce(nnf.gelu(_norm(x, w["g2"], nnf) @ w["w1"]) @ w["w2"])
    return x


def forward_sp(x_local, layers: list[dict], heads_local: int, comm: Comm, nnf):
    """TP + SP: norms/residuals on this rank's sequence slice; all-gather in, reduce-scatter out of each block.
    x_local is this rank's [S/n, B, D] rows, sequence-first as in Megatron-LM, so the gathers and scatters along
    the sequence are plain dim-0 collectives on contiguous buffers."""
    for w in layers:
        a = comm.all_gather_seq(_norm(x_local, w["g1"], nnf))
        x_local = x_local + comm.reduce_scatter_seq(_attn(a, w, heads_local, nnf, seq_first=True))
        b = comm.all_gather_seq(_norm(x_local, w["g2"], nnf))
        x_local = x_local + comm.reduce_scatter_seq(nnf.gelu(b @ w["w1"]) @ w["w2"])
    return x_local


def _timed_runs(fn, comm: Comm, sync, reps: int) -> tuple[float, float]:
    """Median total and communication seconds of fn() over `reps` runs (same count on every rank)."""
    for _ in range(2):
        fn()
    comm.seconds()
    tot, com = [], []
    for _ in range(reps):
        sync()
        t = time.perf_counter()
        fn()
        sync()
        tot.append(time.perf_counter() - t)
        com.append(comm.seconds())
    return statistics.median(tot), statistics.median(com)


def _measure(s: Shape, rank: int, n: int, cpu: bool, env: tuple, modes: tuple[str, ...]) -> None:
    """One shape: correctness of the chosen parallel modes against the unsharded stack, then their timings and the
    reference's (modes: values of MODES; every rank must be given the same, the collectives pair up)."""
    torch, dist, nnf, dev, dtype, comm, sync, reps = env
    full = weights(s, seed=80, torch=torch)
    mine = [{k: v.to(dev, dtype).contiguous() for k, v in shard(w, rank, n).items()} for w in full]
    x = torch.randn(s.batch, s.seq, s.hidden, generator=torch.Generator().manual_seed(1)).to(dev, dtype)
    x_local = x.transpose(0, 1).chunk(n, dim=0)[rank].contiguous()  # [S/n, B, D], sequence-first
    heads = s.heads // n

    def tp():
        return forward_tp(x, mine, heads, comm, nnf)

    def sp():
        return forward_sp(x_local, mine, heads, comm, nnf)

    def peak() -> int:
        return torch.cuda.max_memory_allocated() if not cpu else 0

    def reset() -> None:
        if not cpu:
            torch.cuda.reset_peak_memory_stats()

    runs = {"tensor parallel": tp, "tensor + sequence parallel": sp}
    chosen = [(name, runs[name]) for name in MODES.values() if name in modes]
    with torch.no_grad():
        outs = {name: (tp() if name == "tensor parallel" else comm.all_gather_seq(sp()).transpose(0, 1))
                for name, _ in chosen}  # fmt: skip
        comm.seconds()
        results = {}
        for name, fn in chosen:
            reset()
            t, c = _timed_runs(fn, comm, sync, reps)
            results[name] = (t, c, peak())
        ref_t = ref_peak = 0.0
        err = {}
        if rank == 0:  # the same stack unsharded on one device: the baseline and the correctness reference
            ref_w = [{k: v.to(dev, dtype) for k, v in w.items()} for w in full]

            def ref():
                return forward_ref(x, ref_w, s.heads, nnf)

            y_ref = ref()
            for name, y in outs.items():
                err[name] = float((y - y_ref).float().norm() / y_ref.float().norm())
            reset()
            ref_t, _ = _timed_runs(ref, Comm(dist, torch, 1, not cpu), sync, reps)
            ref_peak = peak()
            del ref_w
        dist.barrier()
    if rank != 0:
        return
    params = sum(v.numel() for w in full for v in w.values())
    common = [("hidden", "", s.hidden), ("heads", "", s.heads), ("layers", "", s.layers),
              ("batch", "", s.batch), ("seq", "tokens", s.seq)]  # fmt: skip
    rows = [("1 device (reference)", 1, ref_t, 0.0, ref_peak, 0.0)]
    rows += [(k, n, t, c, p, err[k]) for k, (t, c, p) in results.items()]
    for mode, ranks, t, c, pk, e in rows:
        emit(
            CASE,
            "transformer stack forward: one device vs tensor / sequence parallel",
            [("mode", "", mode), ("GPUs", "", ranks), *common,
             ("time", "ms", t * 1e3), ("speedup vs 1 device", "x", ref_t / t),
             ("communication", "ms", c * 1e3), ("computation", "ms", (t - c) * 1e3),
             ("communication share", "%", 100 * c / t), ("peak memory, rank 0", "MiB", pk / 2**20),
             ("weights per rank", "MiB", params * (2 if not cpu else 4) / ranks / 2**20),
             ("rel. error vs 1 device", "", e)],
        )  # fmt: skip


def init_rank(rank: int, n: int, cpu: bool, port: int):
    """Join the process group on 127.0.0.1:port: gloo and fp32 on one CPU thread, or NCCL and bf16 on GPU `rank`.
    Returns (device, dtype)."""
    import torch
    import torch.distributed as dist

    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    if cpu:
        torch.set_num_threads(1)
        dist.init_process_group("gloo", rank=rank, world_size=n)
        return torch.device("cpu"), torch.float32
    torch.cuda.set_device(rank)
    dev = torch.device("cuda", rank)
    dist.init_process_group("nccl", rank=rank, world_size=n, device_id=dev)
    return dev, torch.bfloat16


def worker(
    rank: int, n: int, quick: bool, cpu: bool, port: int, modes: tuple[str, ...] = tuple(MODES.values())
) -> None:
    import torch
    import torch.distributed as dist
    import torch.nn.functional as nnf

    dev, dtype = init_rank(rank, n, cpu, port)
    sync = torch.cuda.synchronize if not cpu else (lambda: None)
    env = (torch, dist, nnf, dev, dtype, Comm(dist, torch, n, cuda=not cpu), sync, 3 if cpu else 10)
    for s in shapes(quick, cpu):
        s.check(n)
        _measure(s, rank, n, cpu, env, modes)
    leave_group()


def main(argv: list[str]) -> int:
    import torch
    import torch.multiprocessing as mp

    cpu = "--cpu" in argv
    quick = "--quick" in argv
    avail = (os.cpu_count() or 2) if cpu else torch.cuda.device_count()
    n = int(argv[argv.index("--ranks") + 1]) if "--ranks" in argv else (2 if cpu else avail)
    keys = argv[argv.index("--modes") + 1].split(",") if "--modes" in argv else list(MODES)
    if any(k not in MODES for k in keys):
        print(f"--modes {','.join(keys)}: allowed a comma list of {', '.join(MODES)}", file=sys.stderr)
        return 2
    if n < 2 or n > max(avail, 2 if cpu else 0):
        print(f"--ranks {n}: need 2..{avail} {'processes' if cpu else 'GPUs'} (found {avail})", file=sys.stderr)
        return 3
    for s in shapes(quick, cpu):
        try:
            s.check(n)
        except ValueError as exc:
            print(f"--ranks {n}: {exc}", file=sys.stderr)
            return 2
    port = 29600 + os.getpid() % 1000
    modes = tuple(MODES[k] for k in dict.fromkeys(keys))
    mp.spawn(worker, args=(n, quick, cpu, port, modes), nprocs=n, join=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
