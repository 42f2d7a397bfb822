"""A tokenizer served by Triton's Python backend: same ids as the library in-process, what serving costs, and
request batch 1 vs 16 (d30.e1, d30.e3)."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field

from ailab.contract import Column, Context, Output, Params, Series, Table
from workloads.backends.experiments import Batch, Concurrency, Impl, Int, Seconds, Warmup, Words


class TokenizerParams(Params):
    texts: Annotated[Int, Field(ge=1, le=10_000)] = Field(default=200, description="texts checked against the library")
    words: Words = 96
    seq_len: Annotated[Int, Field(ge=8, le=4096)] = Field(default=256, description="IDS padded/truncated to this")
    duration_s: Seconds = 5.0
    warmup_s: Warmup = 1.0


def tokenizer_model(ctx: Context, p: TokenizerParams) -> Output:
    """Served ids vs the tokenizer library's ids (each text alone and in batches), then latency served vs in-process."""
    import time

    import numpy as np
    from tokenizers import Tokenizer

    from workloads.backends import corpus, serving
    from workloads.backends.repository import TokenizerModel
    from workloads.serving.client import Client
    from workloads.serving.common import host_note, lat
    from workloads.serving.stats import percentile

    at_start = host_note()
    texts = corpus.texts(p.texts, p.words)
    model = TokenizerModel("tokenizer", impl="python", seq_len=p.seq_len, max_batch_size=16)
    with serving.serve(ctx, [model], ctx.workdir / "tok") as srv:
        tok = Tokenizer.from_file(str(srv.tokenizer_json))
        tok.enable_truncation(p.seq_len)
        want = [e.ids for e in tok.encode_batch(texts)]
        got: list[list[int]] = []
        with Client(srv.address("http"), "http", timeout_s=60) as c:
            for k, i in enumerate(range(0, len(texts), 16)):
                chunk = texts[i : i + 16]
                if k % 2 == 0:  # a batch of up to 16 texts in one request
                    out = c.infer("tokenizer", serving.text_batch(chunk))
                    rows = zip(out["IDS"], out["LENGTH"].reshape(-1), strict=True)
                    got += [[int(x) for x in ids[:n]] for ids, n in rows]
                else:  # one text per request
                    for text in chunk:
                        out = c.infer("tokenizer", serving.text_batch([text]))
                        got.append([int(x) for x in out["IDS"][0, : int(out["LENGTH"][0, 0])]])
        same = sum(g == w for g, w in zip(got, want, strict=True))
        if same != len(texts):
            bad = next(i for i, (g, w) in enumerate(zip(got, want, strict=True)) if g != w)
            raise RuntimeError(
                f"served ids differ from the tokenizer library for {len(texts) - same} texts (first #{bad})"
            )
        res, cpu = serving.load(
            srv, "tokenizer", texts[:1], concurrency=1, warmup_s=p.warmup_s, duration_s=p.duration_s
        )
    in_proc = []
    for t in texts:
        t0 = time.perf_counter()
        tok.encode(t)
        in_proc.append((time.perf_counter() - t0) * 1e3)
    in_proc_sorted = np.sort(in_proc)
    check = Table.of(
        "ids_check",
        [("texts", ""), ("identical ids", ""), ("vocabulary", "tokens"), ("mean length", "tokens"), ("truncated", "")],
        caption="Served IDS (Python backend, half the texts batched 16 per request, half one per request) vs "
        "tokenizers in-process; a single difference fails the run",
    )
    check.add(
        len(texts),
        same,
        tok.get_vocab_size(),
        round(float(np.mean([len(w) for w in want])), 1),
        sum(len(w) == p.seq_len for w in want),
    )
    t = Table.of(
        "latency",
        [("path", ""), ("p50", "ms"), ("p99", "ms"), ("throughput", "texts/s"), ("server CPU", "cores")],
        caption=f"One {p.words}-word text per request, one request in flight (HTTP); in-process: Tokenizer.encode",
    )
    t.add(
        "Triton Python backend (tokenize + n-gram features)",
        lat(res, "p50"),
        lat(res, "p99"),
        round(res.throughput_ips, 1),
        round(cpu, 2),
    )
    t.add(
        "tokenizers in-process (encode only)",
        round(percentile(in_proc_sorted, 50), 4),
        round(percentile(in_proc_sorted, 99), 4),
        round(1e3 / float(np.mean(in_proc)), 1),
        "",
    )
    ratio = res.latency_ms["p50"] / percentile(in_proc_sorted, 50)
    return Output(
        tables=[check, t],
        notes=[
            at_start,
            f"Served p50 is {ratio:.0f}x the library's own encode time: the rest is HTTP, Triton's scheduling, the "
            "shared-memory hop to the triton_python_backend_stub process and the Python code around the tokenizer.",
            "Tokenizer: WordPiece trained here by workloads/backends/corpus.py on the curriculum and docs/ "
            "(no download); the served model file is workloads/backends/models/tokenizer/model.py.",
        ],
    )


class BatchParams(Params):
    batches: Annotated[list[Batch], Field(min_length=1)] = Field(default=[1, 16], description="texts per request")
    concurrency: Concurrency = 1
    words: Words = 96
    impls: Annotated[list[Impl], Field(min_length=1)] = Field(
        default=["python", "cpp"], description="hot-loop implementations (one model each)"
    )
    duration_s: Seconds = 5.0
    warmup_s: Warmup = 1.0


def batch_sizes(ctx: Context, p: BatchParams) -> Output:
    """Request batch 1 vs 16 on the Python-backend tokenizer: latency per request, per text, and texts/s."""
    from workloads.backends import corpus, serving
    from workloads.backends.repository import TokenizerModel
    from workloads.serving.common import errors, host_note, lat

    at_start = host_note()
    texts = corpus.texts(max(p.batches), p.words)
    models = [TokenizerModel(f"tok_{i}", impl=i, max_batch_size=max(p.batches)) for i in dict.fromkeys(p.impls)]
    t = Table.of(
        "batch_sizes",
        [
            ("hot loop", ""),
            ("batch", "texts"),
            ("p50", "ms"),
            ("p99", "ms"),
            ("p50 per text", "ms"),
            ("throughput", "texts/s"),
            ("requests", "req/s"),
            ("server CPU", "cores"),
            ("server CPU per text", "ms"),
            ("errors", ""),
        ],
        caption=f"Tokenizer + n-gram features on the Python backend, {p.words}-word texts, "
        f"{p.concurrency} request(s) in flight, HTTP; one model per hot-loop implementation, one server",
    )
    s = Series("throughput_vs_batch", x=Column("batch", "texts"), y=Column("throughput", "texts/s"))
    ips: dict[tuple[str, int], float] = {}
    with serving.serve(ctx, models, ctx.workdir / "batch") as srv:
        for m in models:
            for b in p.batches:
                res, cpu = serving.load(
                    srv, m.name, texts[:b], concurrency=p.concurrency, warmup_s=p.warmup_s, duration_s=p.duration_s
                )
                t.add(
                    m.impl,
                    b,
                    lat(res, "p50"),
                    lat(res, "p99"),
                    round(res.latency_ms["p50"] / b, 3),
                    round(res.throughput_ips, 1),
                    round(res.throughput_rps, 1),
                    round(cpu, 2),
                    round(cpu / res.throughput_ips * 1e3, 3) if res.throughput_ips else "",
                    errors(res),
                )
                s.point(f"hot loop {m.impl}", b, res.throughput_ips)
                ips[(m.impl, b)] = res.throughput_ips
    notes = [at_start]
    lo, hi = min(p.batches), max(p.batches)
    for m in models:
        if lo != hi and ips[(m.impl, lo)] > 0:
            notes.append(
                f"hot loop {m.impl}: batch {hi} moves {ips[(m.impl, hi)] / ips[(m.impl, lo)]:.2f}x the texts per "
                f"second of batch {lo} in this run."
            )
    notes.append(
        "Batching pays the per-request costs (HTTP, Triton's scheduling, the hop to the stub process) once per batch; "
        "it helps most where those costs, not the per-text work, dominate (compare the two hot loops)."
    )
    return Output(tables=[t], series=[s], notes=notes)
