"""Long inputs (d82.e1–e4): chunked prefill, sliding-window inference, latency at long lengths, GPU memory.

Latency/memory use the random-weight model of params.model (cuda_model on CUDA); quality uses the char model
trained here on 128-character contexts, so longer inputs are outside what it was trained on.
torch is imported inside the runners (through the area's modules).
"""

from __future__ import annotations

import itertools
import time

from pydantic import Field

from ailab.contract import Column, Context, Output, Series, Skip, Table
from workloads.llm.budget import RunBudget
from workloads.llm.experiments.common import (
    BudgetParams,
    Count,
    Counts,
    LLMParams,
    NewTokens,
    NonNegative,
    Windows,
    build_model,
    median,
    mib,
    threads_note,
)


class ChunkedParams(LLMParams):
    length: Count = Field(description="tokens of the long input")
    cuda_length: Count | None = None
    chunks: Windows = Field(description="prefill chunk sizes; null = one shot")
    cuda_chunks: Windows | None = None
    repeats: Count


class SlidingParams(BudgetParams):
    eval_sequences: Count = Field(description="held-out sequences of the quality table")
    quality_len: Count = Field(description="chars per held-out sequence")
    quality_windows: Counts
    sinks: NonNegative
    length: Count
    cuda_length: Count | None = None
    windows: Counts
    cuda_windows: Counts | None = None
    chunk: Count
    cuda_chunk: Count | None = None
    new_tokens: NewTokens
    cuda_new_tokens: NewTokens | None = None
    repeats: Count


class LengthsParams(LLMParams):
    lengths: Counts
    cuda_lengths: Counts | None = None
    chunk: Count
    cuda_chunk: Count | None = None
    window: Count
    cuda_window: Count | None = None
    new_tokens: NewTokens
    cuda_new_tokens: NewTokens | None = None
    repeats: Count


class MemoryParams(LLMParams):
    lengths: Counts
    chunk: Count
    window: Count


def _cpu_caption(ctx: Context, lens: list[int]) -> str:
    if ctx.device == "cpu" and max(lens) < 16384:
        return (
            f" On CPU the lengths stop at {max(lens)} tokens (the curriculum asks up to 16k): each length is "
            "prefilled and decoded several times and 2 shared cores would take minutes; --device cuda runs 16k."
        )
    return ""


def chunked(ctx: Context, p: ChunkedParams) -> Output:
    """d82.e1: a long input prefilled in chunks of C tokens through the KV cache vs one shot: latency, equality."""
    import torch

    from workloads.llm.bench import prompt_tokens
    from workloads.llm.generate import prefill, sync
    from workloads.llm.kvcache import make_cache

    p = p.for_device(ctx.device)
    model, cfg = build_model(ctx, p)
    n, reps, chunks = p.length, p.repeats, p.chunks
    prompt = prompt_tokens(n)
    t = Table.of(
        "chunked prefill of one long input",
        [
            ("chunk", "tokens"),
            ("chunks", ""),
            ("prefill", "ms"),
            ("prefill", "tokens/s"),
            ("max abs logit difference vs one shot", ""),
            ("same next token", ""),
            ("largest score matrix if materialised", "MiB"),
            ("peak memory delta", "MiB"),
        ],
        caption=f"{n}-token input, {ctx.device}, d_model {cfg.d_model}, {cfg.n_layers} layers, {cfg.n_heads} heads, "
        f"{cfg.dtype}; median of {reps} after one warm-up. Score matrix = heads × chunk × (keys so far) × 4 B for one "
        "layer (fused attention kernels never hold it whole); peak memory is measured on CUDA only."
        + threads_note(ctx),
    )
    s = Series("prefill latency vs chunk size", Column("chunk", "tokens"), Column("prefill", "ms"), log_x=True)
    ref = None
    for c in chunks:
        times, peak = [], float("nan")
        for i in range(reps + 1):
            cache = make_cache("full", cfg, n, ctx.device)
            if ctx.device == "cuda":
                torch.cuda.synchronize()
                base = torch.cuda.memory_allocated()
                torch.cuda.reset_peak_memory_stats()
            sync(ctx.device)
            start = time.perf_counter()
            logits = prefill(model, prompt, cache, c)
            sync(ctx.device)
            if i:
                times.append(time.perf_counter() - start)
            if ctx.device == "cuda":
                peak = mib(torch.cuda.max_memory_allocated() - base)
        ref = logits if ref is None else ref
        size = c or n
        diff = float((logits.float() - ref.float()).abs().max())
        score = mib(cfg.n_heads * size * n * 4)
        ms = 1e3 * median(times)
        t.add(c or n, -(-n // size), ms, n / (ms / 1e3), diff, bool(logits.argmax() == ref.argmax()), score, peak)
        s.point("full cache", size, ms)
    out = Output(tables=[t], series=[s])
    out.notes.append(
        "Chunked prefill pushes C tokens at a time through the same KV cache: each chunk attends to the cached keys "
        "of earlier chunks plus itself (causal), so the logits equal the one-shot prefill up to float rounding; what "
        "changes is how much attention work and activation memory one step holds, and how many kernel launches."
    )
    return out


def sliding(ctx: Context, p: SlidingParams) -> Output:
    """d82.e2: sliding-window inference on inputs longer than the window: quality by position, latency, memory."""
    from workloads.llm import charlm, quality
    from workloads.llm.bench import kv_label, prompt_tokens, round_robin, setting
    from workloads.llm.kvcache import kv_bytes

    p = p.for_device(ctx.device)
    budget = RunBudget(ctx, p.budget_s)
    budget.require_time("load or train the char model")
    budget.log("char model: loading (training it on a first run)")
    model_q, info = charlm.load_or_train(device=ctx.device, log=budget.log)
    budget.log(f"char model ready ({info['steps']} steps)")
    n_seq, qlen, sinks = p.eval_sequences, p.quality_len, p.sinks
    seqs = quality.eval_sequences(n_seq, qlen)
    bounds = sorted({b for b in (0, charlm.SEQ_LEN, 4 * charlm.SEQ_LEN, qlen) if b <= qlen})
    segs = list(itertools.pairwise(bounds))
    qt = Table.of(
        "perplexity by position on long held-out text (trained char model)",
        [("KV strategy", "")]
        + [(f"perplexity at positions {a}-{b - 1}", "per char") for a, b in segs]
        + [("next-token agreement with full", "%"), ("KV held at the end", "KiB")],
        caption=f"{n_seq} held-out sequences of {qlen} chars; the model was trained on {charlm.SEQ_LEN}-char contexts "
        f"({info['steps']} steps on {charlm.SOURCE}); fed through each cache in chunks of {charlm.SEQ_LEN}.",
    )
    full = quality.teacher_forced(model_q, seqs, "full", chunk=charlm.SEQ_LEN)
    for w, sk in [(None, 0)] + [(w, 0) for w in p.quality_windows] + [(charlm.SEQ_LEN, sinks)]:
        row = f"quality, {kv_label(w, sk)}"
        if not budget.admit(row, budget.estimate("quality")):
            continue
        q = full if w is None else quality.teacher_forced(model_q, seqs, "sliding", w, sk, chunk=charlm.SEQ_LEN)
        budget.done(row)
        held = qlen if w is None else min(qlen, w + sk)
        qt.add(
            kv_label(w, sk),
            *[q.ppl(a, b) for a, b in segs],
            100 * q.agreement(full),
            kv_bytes(model_q.cfg, held) / 1024,
        )
    out = Output(tables=[qt])
    out.notes.append(
        "Past its training context the full-attention model sees relative distances it never learned; a window no "
        "longer than the training context keeps every query in familiar range, and keeps memory at W positions. "
        "Sinks keep the first positions attendable as StreamingLLM suggests (here with their original RoPE positions)."
    )
    if not budget.admit("build the timed model"):
        return budget.finish(out)
    model, cfg = build_model(ctx, p)
    budget.done("build the timed model", f"d_model {cfg.d_model}, {cfg.n_layers} layers, {cfg.dtype}", measured=False)
    n, new, reps, chunk = p.length, p.new_tokens, p.repeats, p.chunk
    windows = [None, *p.windows]
    settings = {kv_label(w): setting(w) for w in windows}
    runs = round_robin(model, prompt_tokens(n), new, settings, reps, chunk=chunk, budget=budget)
    timed = len(runs[kv_label(None)])
    if not timed:
        return budget.finish(out)
    lt = Table.of(
        "long-input latency and KV memory by window",
        [("KV strategy", ""), ("TTFT", "ms"), ("per token", "ms"), ("KV held", "MiB")],
        caption=f"{n}-token input prefilled in chunks of {chunk}, then {new} tokens; {ctx.device}, random weights, "
        f"d_model {cfg.d_model}, {cfg.n_layers} layers, {cfg.dtype}; median of {timed} (per token: median step)."
        + (f" {timed} of {reps} timed rounds fitted in the time budget." if timed < reps else "")
        + threads_note(ctx),
    )
    for w in windows:
        rs = runs[kv_label(w)]
        held = n + new - 1 if w is None else w
        lt.add(
            kv_label(w),
            1e3 * median([r.ttft_s for r in rs]),
            median([r.per_token_ms for r in rs]),
            mib(kv_bytes(cfg, held)),
        )
    out.tables.append(lt)
    return budget.finish(out)


def lengths(ctx: Context, p: LengthsParams) -> Output:
    """d82.e3: latency of long inputs (1k/4k/16k tokens): TTFT, per-token decode latency, tokens/s, KV memory."""
    from workloads.llm.bench import kv_label, prompt_tokens, round_robin, setting
    from workloads.llm.kvcache import kv_bytes

    p = p.for_device(ctx.device)
    model, cfg = build_model(ctx, p)
    lens, new, reps, chunk, window = p.lengths, p.new_tokens, p.repeats, p.chunk, p.window
    t = Table.of(
        "latency by input length",
        [
            ("input", "tokens"),
            ("KV strategy", ""),
            ("TTFT", "ms"),
            ("prefill", "tokens/s"),
            ("per token", "ms"),
            ("decode", "tokens/s"),
            ("KV held", "MiB"),
        ],
        caption=f"{ctx.device}, d_model {cfg.d_model}, {cfg.n_layers} layers, {cfg.n_heads} heads, {cfg.dtype}, random "
        f"weights; prefill in chunks of {chunk}, {new} new tokens; median of {reps} after one warm-up."
        + _cpu_caption(ctx, lens)
        + threads_note(ctx),
    )
    ttft = Series("TTFT vs input length", Column("input", "tokens"), Column("TTFT", "ms"), log_x=True, log_y=True)
    tok = Series("per-token latency vs input length", Column("input", "tokens"), Column("per token", "ms"), log_x=True)
    for n in lens:
        runs = round_robin(model, prompt_tokens(n), new, {kv_label(w): setting(w) for w in (None, window)}, reps, chunk)
        for w in (None, window):
            rs = runs[kv_label(w)]
            ft = median([r.ttft_s for r in rs])
            pt = median([r.per_token_ms for r in rs])
            held = n + new - 1 if w is None else min(n + new - 1, w)
            t.add(
                n,
                kv_label(w),
                1e3 * ft,
                n / ft,
                pt,
                median([r.tokens_per_s for r in rs]),
                mib(kv_bytes(cfg, held)),
            )
            ttft.point(kv_label(w), n, 1e3 * ft)
            tok.point(kv_label(w), n, pt)
    return Output(tables=[t], series=[ttft, tok])


def memory(ctx: Context, p: MemoryParams) -> Output:
    """d82.e4 (GPU): GPU memory vs input length: one-shot vs chunked prefill vs sliding window, vs exact KV bytes."""
    import torch

    from workloads.llm.bench import kv_label, prompt_tokens
    from workloads.llm.generate import prefill
    from workloads.llm.kvcache import kv_bytes, make_cache

    if ctx.device != "cuda" or not torch.cuda.is_available():
        raise Skip("needs a CUDA GPU: memory is read from torch.cuda.max_memory_allocated")
    p = p.for_device(ctx.device)
    model, cfg = build_model(ctx, p)
    lens, chunk, window = p.lengths, p.chunk, p.window
    modes = [
        ("full, one shot", None, None),
        (f"full, chunks of {chunk}", None, chunk),
        (kv_label(window), window, chunk),
    ]
    t = Table.of(
        "GPU memory vs input length",
        [
            ("input", "tokens"),
            ("mode", ""),
            ("KV exact", "MiB"),
            ("resident after prefill", "MiB"),
            ("peak during prefill", "MiB"),
            ("peak - KV exact", "MiB"),
        ],
        caption=f"{torch.cuda.get_device_name()}, d_model {cfg.d_model}, {cfg.n_layers} layers, {cfg.dtype}, random "
        "weights; deltas over the memory allocated before the cache (weights excluded); the LM head runs on every "
        "position of a chunk, as a plain forward does.",
    )
    s = Series(
        "peak GPU memory vs input length", Column("input", "tokens"), Column("peak", "MiB"), log_x=True, log_y=True
    )
    for n in lens:
        for label, w, c in modes:
            torch.cuda.synchronize()
            torch.cuda.empty_cache()
            base = torch.cuda.memory_allocated()
            torch.cuda.reset_peak_memory_stats()
            try:
                cache = make_cache("sliding" if w else "full", cfg, n, "cuda", window=w)
                logits = prefill(model, prompt_tokens(n), cache, chunk=c)
                torch.cuda.synchronize()
                resident, peak = torch.cuda.memory_allocated() - base, torch.cuda.max_memory_allocated() - base
                del cache, logits
            except torch.OutOfMemoryError:
                t.add(
                    n,
                    label + " (out of memory)",
                    mib(kv_bytes(cfg, n if w is None else w)),
                    float("nan"),
                    float("nan"),
                    float("nan"),
                )
                continue
            exact = kv_bytes(cfg, n if w is None else min(n, w))
            t.add(n, label, mib(exact), mib(resident), mib(peak), mib(peak - exact))
            s.point(label, n, mib(peak))
    out = Output(tables=[t], series=[s])
    out.notes.append(
        "One-shot prefill holds the activations of every position at once (and the logits of all of them); chunking "
        "bounds them by the chunk; a sliding window also bounds the KV cache itself at W positions."
    )
    return out
