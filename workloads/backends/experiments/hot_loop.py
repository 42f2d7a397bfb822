"""The tokenizer model's post-processing hot loop in pure Python, Cython, Numba and C++ (pybind11): each checked equal
to the Python result, then timed in-process and served by the Python backend (d30.e5, d67.e1-e3, d67.e5; d30.e2 as
a substitute for a C++ backend)."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import Field

from ailab.contract import Context, Output, Params, Substitute, Table
from workloads.backends.experiments import Batch, Concurrency, Impl, Int, OptLevel, Seconds, Warmup, Words


class HotLoopParams(Params):
    impls: Annotated[list[Impl], Field(min_length=1)] = Field(
        default=["python", "cython", "numba", "cpp"], description="implementations (python is always the reference)"
    )
    batch: Batch = 16
    words: Words = 96
    n_max: Annotated[Int, Field(ge=1, le=8)] = Field(default=3, description="n-grams of 1..n_max tokens")
    buckets: Annotated[Int, Field(ge=16, le=1 << 20)] = Field(default=4096, description="hashed counters per text")
    repeats: Annotated[Int, Field(ge=3, le=100_000)] = Field(default=200, description="in-process calls timed")
    served: bool = Field(default=True, description="also serve each variant on the Python backend and load it")
    concurrency: Concurrency = 2
    duration_s: Seconds = 5.0
    warmup_s: Warmup = 1.0
    opt: OptLevel = "-O3"


def _time_calls(fn: Any, args: tuple[Any, ...], repeats: int) -> list[float]:
    import time

    out = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn(*args)
        out.append((time.perf_counter() - t0) * 1e6)
    return out


def measure(ctx: Context, p: HotLoopParams) -> tuple[list[Table], list[str], dict[str, float]]:
    """In-process and (optionally) served tables; returns served p50 (ms) per impl as well."""
    import numpy as np
    from tokenizers import Tokenizer

    from workloads.backends import build, corpus, serving
    from workloads.backends.hotloop import ngram
    from workloads.backends.repository import TokenizerModel
    from workloads.serving.common import errors, host_note, lat
    from workloads.serving.stats import percentile

    notes = [host_note()]
    impls = ["python", *[i for i in dict.fromkeys(p.impls) if i != "python"]]
    bdir = build.build(p.opt) if any(i in ("cython", "cpp") for i in impls) else None
    tok_json = corpus.train(ctx.workdir / "inproc" / "tokenizer.json")
    tok = Tokenizer.from_file(str(tok_json))
    tok.enable_truncation(256)
    texts = corpus.texts(p.batch, p.words)
    ids, off = ngram.to_csr([e.ids for e in tok.encode_batch(texts)])
    args = (ids, off, p.n_max, p.buckets)
    ref = ngram.ngram_python(*args)
    t_in = Table.of(
        "in_process",
        [
            ("impl", ""),
            ("equal to python", ""),
            ("p50", "µs/batch"),
            ("p99", "µs/batch"),
            ("per token", "ns"),
            ("speed-up vs python", "x"),
        ],
        caption=f"Hashed 1..{p.n_max}-gram counts into {p.buckets} buckets for {p.batch} texts "
        f"({int(off[-1])} tokens), {p.repeats} calls each after a warm-up call; compiled with {p.opt}",
    )
    p50 = {}
    for name in impls:
        fn = ngram.load(name, str(bdir) if bdir else None)
        got = fn(*args)  # the warm-up call, checked before anything is timed
        if got.dtype != ref.dtype or not np.array_equal(got, ref):
            raise RuntimeError(f"impl {name!r} differs from the pure-Python result: not timed")
        lat_us = np.sort(_time_calls(fn, args, p.repeats))
        p50[name] = percentile(lat_us, 50)
        t_in.add(
            name,
            "yes",
            round(p50[name], 2),
            round(percentile(lat_us, 99), 2),
            round(p50[name] * 1e3 / max(int(off[-1]), 1), 2),
            round(p50["python"] / p50[name], 1),
        )
    tables, served_p50 = [t_in], {}
    if p.served:
        t_sv = Table.of(
            "served",
            [
                ("impl", ""),
                ("p50", "ms"),
                ("p99", "ms"),
                ("throughput", "texts/s"),
                ("p50 vs python", "x"),
                ("server CPU", "cores"),
                ("server CPU per text", "ms"),
                ("errors", ""),
            ],
            caption=f"Triton Python backend: tokenize + the hot loop, batch {p.batch}, {p.concurrency} requests in "
            "flight (HTTP), one instance per model, all models in one server",
        )
        models = [TokenizerModel(f"tok_{i}", impl=i, n_max=p.n_max, buckets=p.buckets) for i in impls]
        with serving.serve(ctx, models, ctx.workdir / "served", opt=p.opt, tokenizer_json=tok_json) as srv:
            from workloads.serving.client import Client

            with Client(srv.address("http"), "http", timeout_s=60) as c:
                for m in models:  # the served model must compute the same features too
                    out = c.infer(m.name, serving.text_batch(texts))
                    if not np.array_equal(out["FEATURES"], ref):
                        raise RuntimeError(f"served {m.name} features differ from the pure-Python result")
            for m in models:
                res, cpu = serving.load(
                    srv, m.name, texts, concurrency=p.concurrency, warmup_s=p.warmup_s, duration_s=p.duration_s
                )
                served_p50[m.impl] = res.latency_ms["p50"]
                t_sv.add(
                    m.impl,
                    lat(res, "p50"),
                    lat(res, "p99"),
                    round(res.throughput_ips, 1),
                    round(res.latency_ms["p50"] / served_p50["python"], 3),
                    round(cpu, 2),
                    round(cpu / res.throughput_ips * 1e3, 3) if res.throughput_ips else "",
                    errors(res),
                )
        tables.append(t_sv)
    return tables, notes, served_p50


def hot_loop(ctx: Context, p: HotLoopParams) -> Output:
    """Each implementation checked equal to pure Python, then its in-process and served latency and speed-up."""
    tables, notes, _ = measure(ctx, p)
    notes.append(
        "The hot loop is workloads/backends/hotloop/ngram.py (Python, Numba), ngram_cy.pyx (Cython) and "
        "ngram_cpp.cpp (pybind11), compiled by workloads/backends/build.py during the run; served, the tokenizer "
        "and Triton's per-request costs are added to every variant alike."
    )
    return Output(tables=tables, notes=notes)


CPP_IN_PYTHON = Substitute(
    instead_of="a C++ custom backend (tritonbackend.h)",
    used="the Python backend with its hot loop in C++ through pybind11",
    why="no package the registries hold ships Triton's backend API headers for 2.51 (see d31's skip reason and "
    "workloads/backends/cpp/REGISTRY-CHECK.md), so no C++ backend can be built here",
)


def python_vs_cpp(ctx: Context, p: HotLoopParams) -> Output:
    """Pure-Python vs C++ (pybind11) post-processing inside the Python backend; the C++/Python latency ratio."""
    tables, notes, served = measure(ctx, p)
    if "cpp" in served and served.get("python"):
        notes.append(
            f"C++/Python served p50 latency ratio in this run: {served['cpp'] / served['python']:.3f} "
            "(both pay the Python backend's stub hop; a C++ backend would not)."
        )
    return Output(tables=tables, notes=notes, substitute=CPP_IN_PYTHON)
