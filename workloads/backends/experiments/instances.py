"""Several Python-backend instances vs the GIL (d30.e4, d67.e4): served throughput per instance count, next to
threads in one Python process running the same work."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import Field

from ailab.contract import Column, Context, Output, Params, Series, Table
from workloads.backends.experiments import Batch, Concurrency, Impl, Int, Seconds, Warmup, Words


class InstancesParams(Params):
    counts: Annotated[list[Annotated[Int, Field(ge=1, le=16)]], Field(min_length=1)] = Field(
        default=[1, 2, 4], description="instance_group counts (one triton_python_backend_stub process each)"
    )
    impl: Impl = "python"
    threads_impls: Annotated[list[Impl], Field(min_length=1)] = Field(
        default=["python", "cpp"], description="hot loops run by threads of one process (the GIL comparison)"
    )
    concurrency: Concurrency = 8
    batch: Batch = 4
    words: Words = 96
    duration_s: Seconds = 5.0
    warmup_s: Warmup = 1.0
    thread_seconds: Seconds = Field(default=3.0, description="how long the threads run the hot loop, s")
    thread_batch: Batch = Field(default=16, description="texts in the batch the threads' hot loop works on")


def _threads(impl_name: str, build_dir: str | None, ids: Any, off: Any, n: int, seconds: float) -> tuple[float, float]:
    """(batches/s, cores this process used) while n threads each call the hot loop on the same batch for `seconds`.

    Only the hot loop runs in the threads (the batch is tokenized once beforehand), so with free cores what limits
    them is whether the loop holds the GIL. The process CPU says how much CPU the host gave the threads at all.
    """
    import time
    from concurrent.futures import ThreadPoolExecutor

    from workloads.backends.hotloop import ngram

    impl = ngram.load(impl_name, build_dir)
    impl(ids, off, 3, 4096)  # warm (Numba compiles here)

    def work(deadline: float) -> int:
        calls = 0
        while time.perf_counter() < deadline:
            impl(ids, off, 3, 4096)
            calls += 1
        return calls

    with ThreadPoolExecutor(n) as pool:
        t0, c0 = time.perf_counter(), time.process_time()
        calls = sum(f.result() for f in [pool.submit(work, t0 + seconds) for _ in range(n)])
        wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    return calls / wall, cpu / wall


def instances_gil(ctx: Context, p: InstancesParams) -> Output:
    """Served texts/s, p50/p99 and server CPU per instance count; texts/s of 1..N threads in one process."""
    import os

    from workloads.backends import build, corpus, serving
    from workloads.backends.repository import TokenizerModel
    from workloads.serving.common import errors, host_note, lat

    at_start = host_note()
    texts = corpus.texts(p.batch, p.words)
    served = Table.of(
        "instances",
        [
            ("instances", ""),
            ("throughput", "texts/s"),
            ("p50", "ms"),
            ("p99", "ms"),
            ("server CPU", "cores"),
            ("server CPU per text", "ms"),
            ("errors", ""),
        ],
        caption=f"Tokenizer + n-gram features ({p.impl}) on the Python backend, batch {p.batch}, "
        f"{p.concurrency} requests in flight (HTTP)",
    )
    # relative to one instance / one thread: the variants' absolute rates differ by orders of magnitude
    s = Series("scaling", x=Column("instances or threads", ""), y=Column("throughput vs one", "x"))
    tok_json = corpus.train(ctx.workdir / "tokenizer" / "tokenizer.json")  # one tokenizer for every variant
    inst: dict[int, tuple[float, float]] = {}
    for n in p.counts:
        model = TokenizerModel("tokenizer", impl=p.impl, instances=n, max_batch_size=max(16, p.batch))
        with serving.serve(ctx, [model], ctx.workdir / f"inst{n}", tokenizer_json=tok_json) as srv:
            res, cpu = serving.load(
                srv, "tokenizer", texts, concurrency=p.concurrency, warmup_s=p.warmup_s, duration_s=p.duration_s
            )
        served.add(
            n,
            round(res.throughput_ips, 1),
            lat(res, "p50"),
            lat(res, "p99"),
            round(cpu, 2),
            round(cpu / res.throughput_ips * 1e3, 3) if res.throughput_ips else "",
            errors(res),
        )
        inst[n] = (res.throughput_ips, cpu)
    for n, (ips, _) in inst.items():
        s.point(f"Triton instances ({p.impl})", n, ips / inst[p.counts[0]][0] if inst[p.counts[0]][0] else 0.0)
    bdir = str(build.build()) if any(i in ("cython", "cpp") for i in p.threads_impls) else None
    threads = Table.of(
        "threads_one_process",
        [
            ("hot loop", ""),
            ("threads", ""),
            ("throughput", "texts/s"),
            ("vs 1 thread", "x"),
            ("process CPU", "cores"),
            ("CPU vs 1 thread", "x"),
            ("GIL held in loop", ""),
        ],
        caption=f"The hot loop alone on one tokenized batch of {p.thread_batch} texts, called for "
        f"{p.thread_seconds} s by each of N threads of one Python process (no Triton)",
    )
    from tokenizers import Tokenizer

    from workloads.backends.hotloop import ngram

    tok = Tokenizer.from_file(str(tok_json))
    thread_texts = corpus.texts(p.thread_batch, p.words)
    ids, off = ngram.to_csr([e.ids for e in tok.encode_batch(thread_texts)])
    thr: dict[tuple[str, int], tuple[float, float]] = {}
    for impl in p.threads_impls:
        for n in p.counts:
            bps, cores = _threads(impl, bdir, ids, off, n, p.thread_seconds)
            ips = bps * len(thread_texts)
            thr[(impl, n)] = (ips, cores)
            one = thr[(impl, p.counts[0])]
            threads.add(
                impl,
                n,
                round(ips, 1),
                round(ips / one[0], 2),
                round(cores, 2),
                round(cores / one[1], 2) if one[1] > 0 else "",
                "yes" if impl == "python" else "no (released)",
            )
            s.point(f"threads, one process ({impl})", n, ips / one[0])
    lo, hi = p.counts[0], p.counts[-1]
    seen = ", ".join(
        f"{impl} threads {lo}->{hi}: {thr[(impl, hi)][0] / thr[(impl, lo)][0]:.2f}x texts/s and "
        f"{thr[(impl, hi)][1] / max(thr[(impl, lo)][1], 1e-9):.2f}x the CPU"
        for impl in p.threads_impls
    )
    load = os.getloadavg()[0]
    return Output(
        tables=[served, threads],
        series=[s],
        notes=[
            at_start,
            f"In this run: Triton instances {lo}->{hi}: {inst[hi][0] / inst[lo][0]:.2f}x texts/s, server CPU at "
            f"most {max(c for _, c in inst.values()):.2f} cores; {seen}. Load average {load:.1f} on "
            f"{os.cpu_count()} cores at the end: where the server or this process got less than "
            f"{os.cpu_count()} cores, throughput could not scale; the CPU columns show how much each got.",
            "Why they differ: each Triton Python-backend instance is its own stub process with its own interpreter "
            "and GIL, so instances can use one core each; threads of one process share one GIL, so a loop that "
            "holds it (python) cannot use more than one core whatever the thread count, while one that releases it "
            "(cpp, cython, numba nogil) can, given free cores. Where the process CPU does not grow with the thread "
            "count, the host, not the GIL, set the limit in that run.",
        ],
    )
