"""KV cache strategies (d79.e1–e5): no cache vs full cache, sliding window, window sweep, GPU memory, hit rate vs
latency.

Latency runs use a random-weight model from params.model (params.cuda_model on CUDA); quality runs use the
char model trained here (workloads.llm.charlm). Every timed setting is run once untimed first (warm-up), then
`repeats` times; tables report medians. torch is imported inside the runners (through the area's modules).
"""

from __future__ import annotations

from typing import Self

from pydantic import Field, model_validator

from ailab.contract import Column, Context, Output, Series, Skip, Table
from workloads.llm.experiments.common import (
    Count,
    Counts,
    LLMParams,
    NewTokens,
    NonNegative,
    Shares,
    Windows,
    build_model,
    median,
    mib,
    threads_note,
)


class BaselineParams(LLMParams):
    prompt_lens: Counts = Field(description="prompt lengths, tokens")
    cuda_prompt_lens: Counts | None = None
    new_tokens: NewTokens
    cuda_new_tokens: NewTokens | None = None
    repeats: Count = Field(description="timed runs per setting after one warm-up")


class WindowParams(LLMParams):
    windows: Counts = Field(description="sliding windows timed, tokens")
    cuda_windows: Counts | None = None
    quality_windows: Counts = Field(description="windows whose quality is measured on the trained char model")
    sinks: NonNegative = Field(description="first positions kept attendable (attention sinks)")
    prompt_len: Count
    cuda_prompt_len: Count | None = None
    new_tokens: NewTokens
    cuda_new_tokens: NewTokens | None = None
    repeats: Count
    eval_sequences: Count = Field(description="held-out sequences for perplexity and agreement")
    eval_len: int = Field(strict=True, ge=2, description="chars per held-out sequence; greedy prompts are half")
    gen_tokens: Count = Field(description="greedy tokens compared with the full cache")


class MemoryCurveParams(LLMParams):
    lengths: Counts = Field(description="sequence lengths (prompt + new tokens)")
    windows: Windows = Field(description="null = full cache")
    chunk: Count = Field(description="prefill chunk, tokens")
    new_tokens: Count

    @model_validator(mode="after")
    def _lengths_hold_the_new_tokens(self) -> Self:
        if short := [n for n in self.lengths if n < self.new_tokens]:
            raise ValueError(f"lengths {short} are shorter than new_tokens ({self.new_tokens})")
        return self


class HitRateParams(LLMParams):
    shared_prefix: Shares = Field(description="fractions of requests that start with the shared prefix")
    requests: Count
    prefix_len: NonNegative
    cuda_prefix_len: NonNegative | None = None
    suffix_len: Count
    cuda_suffix_len: Count | None = None
    new_tokens: NewTokens
    cuda_new_tokens: NewTokens | None = None
    window: Count = Field(description="window of the sliding strategy, tokens")
    cuda_window: Count | None = None
    block_size: Count = Field(description="tokens per paged-cache block")


def baseline(ctx: Context, p: BaselineParams) -> Output:
    """d79.e1: no cache (recompute the prefix every step) vs full KV cache: TTFT, per-token latency, tokens/s."""
    from workloads.llm.bench import prompt_tokens, round_robin, setting
    from workloads.llm.kvcache import kv_bytes

    p = p.for_device(ctx.device)
    lens, new, reps = p.prompt_lens, p.new_tokens, p.repeats
    model, cfg = build_model(ctx, p)
    out = Output()
    t = Table.of(
        "generation latency without and with a KV cache",
        [
            ("strategy", ""),
            ("prompt", "tokens"),
            ("new", "tokens"),
            ("TTFT", "ms"),
            ("per token", "ms"),
            ("decode", "tokens/s"),
            ("KV held", "KiB"),
            ("same tokens as no-cache", ""),
        ],
        caption=f"{ctx.device}, {cfg.dtype}, d_model {cfg.d_model}, {cfg.n_layers} layers, {cfg.n_heads} heads, random "
        f"weights; greedy; median of {reps} runs after one warm-up (per token: median step)." + threads_note(ctx),
    )
    lat = Series(
        "per-token decode latency vs prompt length", Column("prompt length", "tokens"), Column("per token", "ms")
    )
    steps = Series(
        "latency of each generated token (longest prompt)", Column("token index", ""), Column("latency", "ms")
    )
    for n in lens:
        runs = round_robin(model, prompt_tokens(n), new, {k: setting(kind=k) for k in ("none", "full")}, reps)
        ref = runs["none"][-1].tokens
        for kind, rs in runs.items():
            held = n + new - 1 if kind == "full" else 0
            pt = median([r.per_token_ms for r in rs])
            t.add(
                kind,
                n,
                new,
                1e3 * median([r.ttft_s for r in rs]),
                pt,
                median([r.tokens_per_s for r in rs]),
                kv_bytes(cfg, held) / 1024,
                rs[-1].tokens == ref,
            )
            lat.point(kind, n, pt)
            if n == lens[-1]:
                for i, st in enumerate(rs[-1].step_s, 1):
                    steps.point(kind, i, 1e3 * st)
    out.tables.append(t)
    out.series += [lat, steps]
    out.notes.append(
        "Without a cache every step re-runs the whole prefix, so per-token latency grows with the sequence; with a "
        "full cache each step computes one position and attends over the stored K/V. 'KV held' is the exact "
        f"accounting: {cfg.n_layers} layers × 2 × {cfg.n_heads} heads × {cfg.head_dim} head_dim × positions × "
        f"{cfg.torch_dtype.itemsize} B."
    )
    return out


def _quality_rows(ctx: Context, p: WindowParams, windows: list, sinks: int) -> tuple[Table, dict]:
    """Perplexity / agreement / greedy match of each window on the trained char model's held-out text."""
    from workloads.llm import charlm, quality
    from workloads.llm.bench import kv_label
    from workloads.llm.generate import generate
    from workloads.llm.kvcache import make_cache

    model, info = charlm.load_or_train(device=ctx.device, log=ctx.log)
    n_seq, length, gen_new = p.eval_sequences, p.eval_len, p.gen_tokens
    seqs = quality.eval_sequences(n_seq, length)
    prompts = [s[: length // 2] for s in seqs]
    full = quality.teacher_forced(model, seqs, "full")
    ref = [
        generate(model, q, gen_new, make_cache("full", model.cfg, len(q) + gen_new, ctx.device)).tokens for q in prompts
    ]
    t = Table.of(
        "quality vs the full cache (trained char model, held-out text)",
        [
            ("KV strategy", ""),
            ("window", "tokens"),
            ("sinks", "tokens"),
            ("perplexity", "per char"),
            ("next-token agreement with full", "%"),
            ("greedy tokens equal to full", "%"),
            ("tokens before first difference", "tokens"),
        ],
        caption=f"char model ({info['steps']} steps, train loss {info['final_train_loss']:.2f} nats/char) trained on "
        f"{charlm.SOURCE}, text sha256 {info['text_sha256_12']}; {n_seq} held-out sequences of {length} chars fed one "
        f"token at a time through the cache; greedy: {gen_new} tokens after {length // 2}-char prompts.",
    )
    ppl = {}
    for w in windows:
        for s in sorted({0, sinks} if w is not None else {0}):
            q = quality.teacher_forced(model, seqs, "full" if w is None else "sliding", window=w, sinks=s)
            kind = "full" if w is None else "sliding"
            same, before = quality.greedy_match(model, prompts, gen_new, ref, kind, w, s)
            t.add(
                kv_label(w, s), w if w is not None else length, s, q.ppl(), 100 * q.agreement(full), 100 * same, before
            )
            ppl[(w, s)] = q.ppl()
    return t, ppl


def _latency_rows(ctx: Context, p: WindowParams, windows: list, sinks: int) -> tuple[Table, Series]:
    from workloads.llm.bench import kv_label, prompt_tokens, round_robin, setting
    from workloads.llm.kvcache import kv_bytes

    model, cfg = build_model(ctx, p)
    n, new, reps = p.prompt_len, p.new_tokens, p.repeats
    prompt = prompt_tokens(n)
    t = Table.of(
        "decode latency and KV memory by window",
        [
            ("KV strategy", ""),
            ("window", "tokens"),
            ("TTFT", "ms"),
            ("per token", "ms"),
            ("decode", "tokens/s"),
            ("KV held (exact)", "KiB"),
            ("same tokens as full", "%"),
        ],
        caption=f"{ctx.device}, random-weight model d_model {cfg.d_model}, {cfg.n_layers} layers, {cfg.dtype}; prompt "
        f"{n} tokens, {new} new tokens, greedy; median of {reps} runs after one warm-up (per token: median step); "
        "random weights, so 'same tokens' shows only whether the window changed the argmax, not quality."
        + threads_note(ctx),
    )
    s = Series("per-token latency vs window", Column("window", "tokens"), Column("per token", "ms"), log_x=True)
    runs = round_robin(model, prompt, new, {kv_label(w, sinks): setting(w, sinks) for w in windows}, reps)
    ref = runs["full"][-1].tokens if "full" in runs else None
    for w in windows:
        rs = runs[kv_label(w, sinks)]
        held = n + new - 1 if w is None else min(n + new - 1, w + sinks)
        pt = median([r.per_token_ms for r in rs])
        same = 100 * sum(a == b for a, b in zip(rs[-1].tokens, ref, strict=True)) / new if ref else float("nan")
        t.add(
            kv_label(w, sinks if w else 0),
            w if w is not None else n + new,
            1e3 * median([r.ttft_s for r in rs]),
            pt,
            median([r.tokens_per_s for r in rs]),
            kv_bytes(cfg, held) / 1024,
            same,
        )
        s.point("sliding" if w else "full", w if w is not None else n + new, pt)
    return t, s


def sliding(ctx: Context, p: WindowParams) -> Output:
    """d79.e2: sliding-window KV cache vs full: latency, memory and what it does to the output."""
    p = p.for_device(ctx.device)
    out = Output()
    qt, _ = _quality_rows(ctx, p, [None, *p.quality_windows], p.sinks)
    lt, ls = _latency_rows(ctx, p, [None, *p.windows], p.sinks)
    out.tables += [qt, lt]
    out.series.append(ls)
    out.notes.append(
        "Sliding window: each layer attends to the last W positions only (plus the first `sinks` positions when set), "
        "held in a ring buffer of W + sinks slots, so memory and per-token attention cost stop growing with length. "
        "The output changes once the sequence is longer than W: the quality table counts how often."
    )
    return out


def window_sweep(ctx: Context, p: WindowParams) -> Output:
    """d79.e3: window size sweep: per-token latency, KV memory and quality for each W."""
    from workloads.llm.bench import kv_label

    p = p.for_device(ctx.device)
    out = Output()
    lt, ls = _latency_rows(ctx, p, [*p.windows, None], 0)
    qt, ppl = _quality_rows(ctx, p, [*p.quality_windows, None], p.sinks)
    q = Series(
        "perplexity vs window (trained char model)",
        Column("window", "tokens"),
        Column("perplexity", "per char"),
        log_x=True,
    )
    for (w, s), v in ppl.items():
        if w is not None:
            q.point(kv_label(1, s).replace("W=1", ""), w, v)
    out.tables += [lt, qt]
    out.series += [ls, q]
    return out


def memory_curve(ctx: Context, p: MemoryCurveParams) -> Output:
    """d79.e4 (GPU): KV cache memory vs sequence length and window: measured allocator deltas next to exact bytes."""
    import torch

    from workloads.llm.bench import kv_label, prompt_tokens
    from workloads.llm.generate import generate
    from workloads.llm.kvcache import kv_bytes, make_cache

    if ctx.device != "cuda" or not torch.cuda.is_available():
        raise Skip("needs a CUDA GPU: memory is read from torch.cuda.max_memory_allocated")
    p = p.for_device(ctx.device)
    model, cfg = build_model(ctx, p)
    lens, windows, chunk, new = p.lengths, p.windows, p.chunk, p.new_tokens
    t = Table.of(
        "KV cache memory by sequence length and window",
        [
            ("sequence", "tokens"),
            ("KV strategy", ""),
            ("KV exact", "MiB"),
            ("resident after generation", "MiB"),
            ("peak during generation", "MiB"),
            ("resident - exact", "MiB"),
        ],
        caption=f"{torch.cuda.get_device_name()}, d_model {cfg.d_model}, {cfg.n_layers} layers, {cfg.n_heads} heads, "
        f"{cfg.dtype}; prefill in chunks of {chunk}, then {new} decode steps; deltas over the allocated memory before "
        "the cache was created (weights excluded).",
    )
    s = Series(
        "KV cache memory vs sequence length", Column("sequence", "tokens"), Column("resident", "MiB"), log_x=True
    )
    for n in lens:
        for w in windows:
            torch.cuda.synchronize()
            torch.cuda.empty_cache()
            base = torch.cuda.memory_allocated()
            torch.cuda.reset_peak_memory_stats()
            cache = make_cache("full" if w is None else "sliding", cfg, n, "cuda", window=w)
            generate(model, prompt_tokens(n - new + 1), new, cache, chunk=chunk)
            torch.cuda.synchronize()
            resident = torch.cuda.memory_allocated() - base
            peak = torch.cuda.max_memory_allocated() - base
            exact = kv_bytes(cfg, n if w is None else w)
            t.add(n, kv_label(w), mib(exact), mib(resident), mib(peak), mib(resident - exact))
            s.point(kv_label(w), n, mib(resident))
            del cache
    out = Output(tables=[t], series=[s])
    out.notes.append(
        "Full cache memory grows linearly with the sequence (preallocated for prompt + new tokens); a sliding window "
        "holds W positions whatever the length. 'peak' adds the prefill activations of one chunk."
    )
    return out


def hit_rate_latency(ctx: Context, p: HitRateParams) -> Output:
    """d79.e5: KV hit rate (attended K/V served from cache) vs request latency for each strategy and workload."""
    from workloads.llm import charlm
    from workloads.llm.generate import generate
    from workloads.llm.kvcache import make_cache
    from workloads.llm.paged import BlockPool, PagedCache, PrefixStore
    from workloads.llm.prompt_cache import WorkloadSpec, make_workload

    p = p.for_device(ctx.device)
    model, cfg = build_model(ctx, p)
    shares = list(p.shared_prefix)
    new, n_req, window, bs = p.new_tokens, p.requests, p.window, p.block_size
    plen, slen = p.prefix_len, p.suffix_len
    text = charlm.corpus()[1]
    t = Table.of(
        "KV hit rate vs latency",
        [
            ("KV strategy", ""),
            ("requests sharing the prefix", "%"),
            ("KV hit rate", "%"),
            ("prefix tokens reused", "%"),
            ("mean TTFT", "ms"),
            ("mean request latency", "ms"),
        ],
        caption=f"{n_req} requests of {plen}+{slen} prompt tokens and {new} new tokens each; random-weight model "
        f"d_model {cfg.d_model}, {cfg.n_layers} layers; KV hit rate = attended K/V positions read from the cache / "
        "all attended positions (prefill + decode, layer 0)." + threads_note(ctx),
    )
    s = Series(
        "KV hit rate vs mean request latency", Column("KV hit rate", "%"), Column("mean latency", "ms"), kind="scatter"
    )
    ts = Series("KV hit rate vs mean TTFT", Column("KV hit rate", "%"), Column("mean TTFT", "ms"), kind="scatter")
    for share in shares:
        spec = WorkloadSpec(requests=n_req, repeat=0.0, shared_prefix=share, prefix_len=plen, suffix_len=slen, seed=1)
        prompts = make_workload(spec, text)
        kinds = ("none", "full", "sliding", "paged+prefix")
        pool = BlockPool(cfg, (n_req + 2) * (-(-(plen + slen + new) // bs)), bs, ctx.device)
        store = PrefixStore(pool, pool.num_blocks // 2)
        generate(model, prompts[0], new, make_cache("full", cfg, len(prompts[0]) + new, ctx.device))  # warm-up
        acc = {k: {"served": 0, "computed": 0, "ttft": [], "lat": []} for k in kinds}
        for q in prompts:  # request by request, every strategy in turn: drift on the host hits all alike
            for kind in kinds:
                if kind == "paged+prefix":
                    cache = PagedCache(pool, store.match(q))
                else:
                    cache = make_cache(kind, cfg, len(q) + new, ctx.device, window=window)
                start = cache.length if isinstance(cache, PagedCache) else 0
                g = generate(model, q[start:], new, cache, start=start)
                if isinstance(cache, PagedCache):
                    store.insert(q, cache.table)
                    cache.release()
                a = acc[kind]
                a["ttft"].append(g.ttft_s)
                a["lat"].append(g.total_s)
                a["served"] += cache.stats.served
                a["computed"] += cache.stats.computed
        for kind, a in acc.items():
            hit = a["served"] / (a["served"] + a["computed"])
            reused = store.stats.token_hit_rate if kind == "paged+prefix" else 0.0
            mean_ttft, mean_lat = 1e3 * sum(a["ttft"]) / n_req, 1e3 * sum(a["lat"]) / n_req
            t.add(kind, 100 * share, 100 * hit, 100 * reused, mean_ttft, mean_lat)
            s.point(kind, 100 * hit, mean_lat)
            ts.point(kind, 100 * hit, mean_ttft)
    out = Output(tables=[t], series=[s, ts])
    out.notes.append(
        "'none' recomputes everything (hit rate 0); 'full' reuses its own K/V while decoding; 'sliding' serves at "
        f"most W={window} positions; 'paged+prefix' also reuses the shared system prompt's blocks ({bs} tokens each) "
        "across requests, so its hit rate rises with the share of requests carrying that prefix. Prefix reuse shortens "
        "the prefill (TTFT); the decode steps after it are unchanged (and the paged cache gathers its blocks every "
        "step), so the whole request gains less than its TTFT when decode dominates."
    )
    return out
