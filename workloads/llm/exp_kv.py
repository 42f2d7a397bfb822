"""Runners of Day 79 (d79.e1–e5): KV cache baseline, sliding window, window sweep, GPU memory, hit rate vs latency.

Latency runs use a random-weight model from params.model (params.cuda_model on CUDA); quality runs use the
char model trained here (workloads.llm.charlm). Every timed setting is run once untimed first (warm-up), then
`repeats` times; tables report medians.
"""

from __future__ import annotations

import torch

from ailab.contract import Column, Context, Output, Series, Skip, Table
from workloads.llm import charlm, params, quality
from workloads.llm.bench import kv_label, prompt_tokens, round_robin, setting
from workloads.llm.generate import generate
from workloads.llm.kvcache import kv_bytes, make_cache
from workloads.llm.model import bad
from workloads.llm.paged import BlockPool, PagedCache, PrefixStore
from workloads.llm.prompt_cache import WorkloadSpec, make_workload


def baseline(ctx: Context) -> Output:
    """d79.e1: no cache (recompute the prefix every step) vs full KV cache: TTFT, per-token latency, tokens/s."""
    lens, new, reps = (
        params.integers(ctx, "prompt_lens"),
        params.integer(ctx, "new_tokens", 2),
        params.integer(ctx, "repeats"),
    )
    model, cfg = params.model(ctx)
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
        f"weights; greedy; median of {reps} runs after one warm-up (per token: median step)."
        + params.threads_note(ctx),
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
            pt = params.median([r.per_token_ms for r in rs])
            t.add(
                kind,
                n,
                new,
                1e3 * params.median([r.ttft_s for r in rs]),
                pt,
                params.median([r.tokens_per_s for r in rs]),
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


def _quality_rows(ctx: Context, windows: list, sinks: int) -> tuple[Table, dict]:
    """Perplexity / agreement / greedy match of each window on the trained char model's held-out text."""
    model, info = charlm.load_or_train(device=ctx.device, log=ctx.log)
    n_seq, length = params.integer(ctx, "eval_sequences"), params.integer(ctx, "eval_len")
    gen_new = params.integer(ctx, "gen_tokens")
    seqs = quality.eval_sequences(n_seq, length)
    prompts = [s[: length // 2] for s in seqs]
    full = quality.teacher_forced(model, seqs, "full")
    ref = [
        generate(model, p, gen_new, make_cache("full", model.cfg, len(p) + gen_new, ctx.device)).tokens for p in prompts
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


def _latency_rows(ctx: Context, windows: list, sinks: int) -> tuple[Table, Series]:
    model, cfg = params.model(ctx)
    n, new, reps = (
        params.integer(ctx, "prompt_len"),
        params.integer(ctx, "new_tokens", 2),
        params.integer(ctx, "repeats"),
    )
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
        + params.threads_note(ctx),
    )
    s = Series("per-token latency vs window", Column("window", "tokens"), Column("per token", "ms"), log_x=True)
    runs = round_robin(model, prompt, new, {kv_label(w, sinks): setting(w, sinks) for w in windows}, reps)
    ref = runs["full"][-1].tokens if "full" in runs else None
    for w in windows:
        rs = runs[kv_label(w, sinks)]
        held = n + new - 1 if w is None else min(n + new - 1, w + sinks)
        pt = params.median([r.per_token_ms for r in rs])
        same = 100 * sum(a == b for a, b in zip(rs[-1].tokens, ref, strict=True)) / new if ref else float("nan")
        t.add(
            kv_label(w, sinks if w else 0),
            w if w is not None else n + new,
            1e3 * params.median([r.ttft_s for r in rs]),
            pt,
            params.median([r.tokens_per_s for r in rs]),
            kv_bytes(cfg, held) / 1024,
            same,
        )
        s.point("sliding" if w else "full", w if w is not None else n + new, pt)
    return t, s


def sliding(ctx: Context) -> Output:
    """d79.e2: sliding-window KV cache vs full: latency, memory and what it does to the output."""
    windows = [None, *params.integers(ctx, "windows")]
    sinks = params.integer(ctx, "sinks", 0)
    out = Output()
    qt, _ = _quality_rows(ctx, [None, *params.integers(ctx, "quality_windows")], sinks)
    lt, ls = _latency_rows(ctx, windows, sinks)
    out.tables += [qt, lt]
    out.series.append(ls)
    out.notes.append(
        "Sliding window: each layer attends to the last W positions only (plus the first `sinks` positions when set), "
        "held in a ring buffer of W + sinks slots, so memory and per-token attention cost stop growing with length. "
        "The output changes once the sequence is longer than W: the quality table counts how often."
    )
    return out


def window_sweep(ctx: Context) -> Output:
    """d79.e3: window size sweep: per-token latency, KV memory and quality for each W."""
    sinks = params.integer(ctx, "sinks", 0)
    out = Output()
    lt, ls = _latency_rows(ctx, [*params.integers(ctx, "windows"), None], 0)
    qt, ppl = _quality_rows(ctx, [*params.integers(ctx, "quality_windows"), None], sinks)
    q = Series(
        "perplexity vs window (trained char model)",
        Column("window", "tokens"),
        Column("perplexity", "per char"),
        log_x=True,
    )
    for (w, s), p in ppl.items():
        if w is not None:
            q.point(kv_label(1, s).replace("W=1", ""), w, p)
    out.tables += [lt, qt]
    out.series += [ls, q]
    return out


def memory_curve(ctx: Context) -> Output:
    """d79.e4 (GPU): KV cache memory vs sequence length and window: measured allocator deltas next to exact bytes."""
    if ctx.device != "cuda" or not torch.cuda.is_available():
        raise Skip("needs a CUDA GPU: memory is read from torch.cuda.max_memory_allocated")
    model, cfg = params.model(ctx)
    lens, windows = params.integers(ctx, "lengths"), params.integers(ctx, "windows", allow_null=True)
    chunk, new = params.integer(ctx, "chunk"), params.integer(ctx, "new_tokens")
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
            t.add(
                n, kv_label(w), params.mib(exact), params.mib(resident), params.mib(peak), params.mib(resident - exact)
            )
            s.point(kv_label(w), n, params.mib(resident))
            del cache
    out = Output(tables=[t], series=[s])
    out.notes.append(
        "Full cache memory grows linearly with the sequence (preallocated for prompt + new tokens); a sliding window "
        "holds W positions whatever the length. 'peak' adds the prefill activations of one chunk."
    )
    return out


def hit_rate_latency(ctx: Context) -> Output:
    """d79.e5: KV hit rate (attended K/V served from cache) vs request latency for each strategy and workload."""
    model, cfg = params.model(ctx)
    shares = [float(x) for x in params.get(ctx, "shared_prefix")]
    if not shares or any(not 0 <= x <= 1 for x in shares):
        raise bad("params.shared_prefix", shares, "a non-empty list of numbers 0..1")
    new, n_req = params.integer(ctx, "new_tokens", 2), params.integer(ctx, "requests")
    window, bs = params.integer(ctx, "window"), params.integer(ctx, "block_size")
    plen, slen = params.integer(ctx, "prefix_len", 0), params.integer(ctx, "suffix_len")
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
        "all attended positions (prefill + decode, layer 0)." + params.threads_note(ctx),
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
        for p in prompts:  # request by request, every strategy in turn: drift on the host hits all alike
            for kind in kinds:
                if kind == "paged+prefix":
                    cache = PagedCache(pool, store.match(p))
                else:
                    cache = make_cache(kind, cfg, len(p) + new, ctx.device, window=window)
                start = cache.length if isinstance(cache, PagedCache) else 0
                g = generate(model, p[start:], new, cache, start=start)
                if isinstance(cache, PagedCache):
                    store.insert(p, cache.table)
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
