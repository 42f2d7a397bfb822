"""The paged-KV continuous-batching engine as the lab's stand-in for vLLM (d78.e1), FasterTransformer's closest
stand-in (d78.e2), the frameworks table (d78.e5), a long run (d84.e4) and the KV cache in the platform's serving
path (d88.e2).

d78.e1 measures, on one device and one seeded ShareGPT-like request mix: Hugging Face `generate` with static
batching (eager, and with `cache_implementation="static"`, which transformers compiles with CUDA graphs; CUDA only)
against the engine at several concurrency levels; batch-1 decode memory-bandwidth utilisation; an overload run with
a small KV pool (preemptions); and a generation check (engine vs HF greedy tokens, top-2 logit gap where they part).
torch and transformers are imported inside the runners.
"""

from __future__ import annotations

import math
import time
from typing import Annotated, Any, Literal

from pydantic import Field

from ailab.contract import Context, Output, Params, Series, Skip, Substitute, Table
from workloads.llm.budget import RunBudget
from workloads.llm.experiments.common import BudgetParams, Count, Counts, LLMParams

Shape = Literal["llama-tiny", "llama-1b", "llama-8b"]
Levels = Annotated[list[Count], Field(min_length=0)]

VLLM = Substitute(
    instead_of="vLLM",
    used="the lab's paged-KV continuous-batching engine (workloads/llm/engine.py)",
    why="vLLM cannot be installed on the lent GPU machine (no package registry reachable there; 64 MiB travels "
    "with a call) nor here (no CUDA); the engine implements its scheduling and memory ideas in torch + Triton",
)


class EngineParams(LLMParams):
    """Model shape (random weights, initialised on the device), request mix and engine settings."""

    model: Shape = "llama-tiny"  # type: ignore[assignment]
    cuda_model: Shape | None = "llama-8b"  # type: ignore[assignment]
    dtype: Literal["float32", "bfloat16"] = "float32"
    cuda_dtype: Literal["float32", "bfloat16"] | None = "bfloat16"
    seed: Annotated[int, Field(strict=True, ge=0)] = 0
    prompt_median: Count = 160
    prompt_max: Count = 1024
    cuda_prompt_max: Count | None = None
    output_median: Count = 128
    cuda_output_median: Count | None = None
    output_max: Count = 256
    cuda_output_max: Count | None = None
    block_size: Count = 16
    max_num_seqs: Count = 256
    max_num_batched_tokens: Count = 2048
    cuda_max_num_batched_tokens: Count | None = None
    max_model_len: Count = 2048
    kv_cache_gb: float = Field(0.0, ge=0, description="KV pool size on CUDA (0: sized for max_num_seqs)")
    cuda_kv_cache_gb: float | None = None
    graphs: bool = Field(False, description="Triton decode kernel + CUDA graphs per batch bucket (CUDA only)")
    cuda_graphs: bool | None = True


class BenchParams(EngineParams):
    concurrency: Counts = Field(description="concurrent requests of the engine's closed loop")
    requests_per_level: Count = Field(2, description="requests per level = this × concurrency (at least min)")
    min_requests: Count = 8
    hf_eager: Levels = Field(description="concurrency levels (static batch sizes) of HF eager generate")
    cuda_hf_eager: Levels | None = None
    hf_compiled: Levels = Field(default_factory=list, description="levels of HF static-cache compiled generate")
    cuda_hf_compiled: Levels | None = None
    goal_level: Count = Field(64, description="the level of the throughput goals")
    overload_concurrency: Count = 128
    overload_kv_fraction: float = Field(0.15, gt=0, le=1, description="KV pool vs what the overload run needs")
    bandwidth_prompt: Count = 128
    bandwidth_new: Count = 128
    verify_prompts: Count = 4
    verify_tokens: Count = 32
    budget_s: float = Field(1e9, gt=0, description="sections starting after this many seconds are skipped")
    cuda_budget_s: float | None = None


def _build(ctx: Context, p: EngineParams, **over: Any):
    import torch

    from workloads.llm.engine import EngineConfig, LLMEngine, build_llama

    if ctx.device == "cpu":
        torch.set_num_threads(p.threads)
    model = build_llama(p.model, ctx.device, p.dtype, p.seed)
    return model, _engine(ctx, p, model, **over), EngineConfig, LLMEngine


def _engine(ctx: Context, p: EngineParams, model: Any, **over: Any):
    from workloads.llm.engine import EngineConfig, LLMEngine

    graphs = p.graphs and ctx.device == "cuda"
    kw: dict[str, Any] = dict(
        block_size=p.block_size,
        max_num_seqs=p.max_num_seqs,
        max_num_batched_tokens=p.max_num_batched_tokens,
        max_model_len=p.max_model_len,
        kv_cache_gb=p.kv_cache_gb if ctx.device == "cuda" else 0.0,
        attention="triton" if graphs else "sdpa",
        cuda_graphs=graphs,
    )
    kw.update(over)
    return LLMEngine(model, EngineConfig(**kw), name=p.model)


def _mix(p: BenchParams, n: int, vocab: int, seed_offset: int = 0):
    from workloads.llm.serving_bench import sharegpt_like

    return sharegpt_like(
        n,
        p.seed + seed_offset,
        vocab,
        prompt_median=p.prompt_median,
        prompt_range=(8, p.prompt_max),
        output_median=p.output_median,
        output_range=(8, p.output_max),
    )


def _kernel_check(ctx: Context) -> tuple[bool, float]:
    """The Triton paged decode kernel against SDPA over gathered blocks on random data (max |difference|)."""
    import torch
    from torch.nn import functional as F  # noqa: N812

    from workloads.llm.engine import triton_paged_decode

    g = torch.Generator(device=ctx.device).manual_seed(0)
    nb, bs, hkv, d, h = 64, 16, 8, 128, 32
    kc = torch.randn(nb, bs, hkv, d, device=ctx.device, generator=g, dtype=torch.bfloat16)
    vc = torch.randn(nb, bs, hkv, d, device=ctx.device, generator=g, dtype=torch.bfloat16)
    q = torch.randn(3, h, d, device=ctx.device, generator=g, dtype=torch.bfloat16)
    lens = [200, 17, 512]
    bt = torch.zeros((3, 32), dtype=torch.int32)
    perm = torch.randperm(nb - 1, generator=torch.Generator().manual_seed(0)) + 1
    for i, n in enumerate(lens):
        bt[i, : -(-n // bs)] = perm[: -(-n // bs)].to(torch.int32)
    bt = bt.to(ctx.device)
    out = triton_paged_decode(q, kc, vc, bt, torch.tensor(lens, dtype=torch.int32, device=ctx.device), d**-0.5)
    err = 0.0
    for i, n in enumerate(lens):
        blocks = bt[i, : -(-n // bs)].long()
        k = kc[blocks].reshape(-1, hkv, d)[:n].transpose(0, 1).float()
        v = vc[blocks].reshape(-1, hkv, d)[:n].transpose(0, 1).float()
        ref = F.scaled_dot_product_attention(q[i][:, None].float(), k, v, enable_gqa=True)[:, 0]
        err = max(err, float((ref - out[i].float()).abs().max()))
    return err < 2e-2, err


def _verify(ctx: Context, p: BenchParams, model: Any, engine: Any) -> Table:
    """Engine vs HF greedy on the same weights: tokens equal before they part, and the top-2 gaps there."""
    import torch

    from workloads.llm.engine import SamplingParams

    t = Table.of(
        "generation check: engine vs HF generate (greedy, same weights)",
        [
            ("prompt tokens", ""),
            ("new tokens", ""),
            ("equal tokens before divergence", ""),
            ("identical", ""),
            ("HF top-2 logit gap at divergence", "logit"),
            ("engine top-2 logit gap at divergence", "logit"),
            ("max |logit difference| at step 1", "logit"),
        ],
        caption="Both greedy on one request at a time; HF with its default (dynamic) cache and SDPA attention, the "
        "engine with its paged cache. Where they part, the top-2 gaps of both at that step are compared with the "
        f"difference the two code paths make on identical inputs (first step). {ctx.device}, {p.model}, {p.dtype}.",
    )
    g = torch.Generator().manual_seed(p.seed + 99)
    for i in range(p.verify_prompts):
        n = min([16, 64, 128, 256][i % 4], p.max_model_len - p.verify_tokens - 1)
        prompt = torch.randint(1, model.config.vocab_size, (n,), generator=g).tolist()
        with torch.no_grad():
            hf = model.generate(
                torch.tensor([prompt], device=ctx.device),
                max_new_tokens=p.verify_tokens,
                do_sample=False,
                output_logits=True,
                return_dict_in_generate=True,
                pad_token_id=0,
            )
        hf_toks = hf.sequences[0, n:].tolist()
        hf_logits = [x[0].float() for x in hf.logits]
        req = engine.add_request(prompt, SamplingParams(max_tokens=p.verify_tokens))
        eng_logits = []
        while engine.has_unfinished():
            engine.step()
            reqs, lg = engine.last_logits
            if req in reqs:
                eng_logits.append(lg[reqs.index(req)].float().clone())
        engine.finished.clear()
        k = next((j for j, (a, b) in enumerate(zip(hf_toks, req.output, strict=True)) if a != b), None)

        def gap(x: torch.Tensor) -> float:
            top = torch.topk(x, 2).values
            return float(top[0] - top[1])

        diff0 = float((hf_logits[0] - eng_logits[0]).abs().max())
        if k is None:
            t.add(n, p.verify_tokens, p.verify_tokens, "yes", math.nan, math.nan, diff0)
        else:
            t.add(n, p.verify_tokens, k, "no", gap(hf_logits[k]), gap(eng_logits[k]), diff0)
    return t


def serve_bench(ctx: Context, p: BenchParams) -> Output:
    """d78.e1: the engine vs HF generate (eager / static-cache compiled) on a ShareGPT-like mix; bandwidth; overload."""
    import torch

    from workloads.llm.serving_bench import COLUMNS, copy_bandwidth, decode_bandwidth, run_engine, run_hf

    p = p.for_device(ctx.device)
    t_start = time.perf_counter()
    out = Output(substitute=VLLM)
    skipped: list[str] = []
    failed: list[str] = []

    def over_budget(what: str) -> bool:
        if time.perf_counter() - t_start > p.budget_s:
            skipped.append(what)
            return True
        return False

    kernel_note = ""
    if ctx.device == "cuda" and p.graphs:
        ok, err = _kernel_check(ctx)
        kernel_note = f" Triton paged decode kernel vs SDPA on random bf16 data: max |difference| {err:.2e}."
        if not ok:
            p = p.model_copy(update={"graphs": False})
            kernel_note += " Above tolerance: the run uses SDPA over gathered blocks, without CUDA graphs."
    model, engine, _, _ = _build(ctx, p)
    vocab = model.config.vocab_size
    ctx.log(f"model {p.model} built; engine: {engine.alloc.usable} blocks, graphs {sorted(engine._graphs)}")
    setup = (
        f"{ctx.device}, {p.model} shape ({sum(x.numel() for x in model.parameters()) / 1e9:.2f} B parameters, "
        f"random weights), {p.dtype}; engine: block {p.block_size}, {engine.alloc.usable} KV blocks, "
        f"max {p.max_num_seqs} sequences, {p.max_num_batched_tokens} tokens per step (chunked prefill), attention "
        f"{engine.cfg.attention}{', CUDA graphs per batch bucket' if engine._graphs else ''}."
    )
    out.tables.append(_verify(ctx, p, model, engine))
    engine.reset_prefix_cache()

    # -- throughput / latency at each concurrency
    main = Table.of(
        "output throughput and latency by concurrency",
        COLUMNS,
        caption="One seeded ShareGPT-like mix (log-normal prompt and output lengths, prompts "
        f"median {p.prompt_median} clipped to [8, {p.prompt_max}], outputs median {p.output_median} clipped to "
        f"[8, {p.output_max}] tokens; no EOS: each request gets exactly its length). Engine: a closed loop keeping "
        f"`concurrency` requests in flight over max({p.min_requests}, {p.requests_per_level}×concurrency) requests; "
        "TTFT from submission. HF generate: static batches of `concurrency` requests, left-padded, each batch "
        "decoding its longest output; TTFT counts from the start of the level (later batches wait). " + setup,
    )
    tput = Series("output throughput vs concurrency", _col("concurrency", ""), _col("output throughput", "tok/s"))
    results: dict[tuple[str, int], Any] = {}
    for c in p.concurrency:
        if over_budget(f"engine at {c}"):
            continue
        n = max(p.min_requests, p.requests_per_level * c)
        reqs = _mix(p, n, vocab)
        engine.reset_prefix_cache()
        st = run_engine(engine, reqs, c)
        results[("engine", c)] = st
        main.add(*st.row())
        tput.point("engine", c, st.tok_s)
        ctx.log(f"engine c={c}: {st.tok_s:.1f} tok/s")
    # -- decode bandwidth at batch 1
    bw = None
    if ctx.device == "cuda" and not over_budget("bandwidth"):
        engine.reset_prefix_cache()
        d = decode_bandwidth(engine, p.bandwidth_prompt, p.bandwidth_new, p.seed)
        copy = copy_bandwidth(ctx.device)
        bytes_step = d["weight_bytes"] + d["kv_bytes"]
        bw = Table.of(
            "decode memory-bandwidth utilisation at batch 1",
            [
                ("what", ""),
                ("step time", "ms"),
                ("bytes read per step", "GB"),
                ("achieved", "GB/s"),
                ("device-to-device copy", "GB/s"),
                ("utilisation", "%"),
            ],
            caption=f"One request, {p.bandwidth_prompt}-token prompt, {p.bandwidth_new} new tokens; bytes per step = "
            "every weight once (the LM head included) + the K/V of the mean context; copy bandwidth = (bytes read + "
            "written) / time of a 2 GiB device-to-device copy in this run (CUDA events, mean of 10). 'engine step' "
            "is the median gap between the request's tokens (scheduling, host sync and sampling included); 'graph "
            "replay' is the captured decode forward alone." + kernel_note,
        )
        rows = [("engine step (median inter-token gap)", d["step_s"])]
        if "replay_s" in d:
            rows.append(("graph replay of the batch-1 decode forward", d["replay_s"]))
        for what, s in rows:
            gbs = bytes_step / s / 1e9
            bw.add(what, 1e3 * s, bytes_step / 1e9, gbs, copy / 1e9, 100 * gbs / (copy / 1e9))
        out.tables.append(bw)
        results["bw"] = bytes_step / d["step_s"] / copy

    # -- overload: a small KV pool, many concurrent requests -> preemption by recompute
    if not over_budget("overload"):
        c = p.overload_concurrency
        reqs = _mix(p, c, vocab)
        need = sum(-(-(len(r.prompt) + r.max_tokens) // p.block_size) for r in reqs)
        small_blocks = max(
            int(need * p.overload_kv_fraction),
            max(-(-(len(r.prompt) + r.max_tokens) // p.block_size) for r in reqs) + 2,
        )
        del engine
        if ctx.device == "cuda":
            torch.cuda.empty_cache()
        small = _engine(ctx, p, model, num_blocks=small_blocks + 1, kv_cache_gb=0.0)
        full = results.get(("engine", c))
        ref_engine = None
        if full is None or full.requests != len(reqs):
            ref_engine = _engine(ctx, p, model, num_blocks=need + 1, kv_cache_gb=0.0)
            full = run_engine(ref_engine, reqs, c)
            del ref_engine
        st = run_engine(small, reqs, c, label="engine, small KV pool")
        same = sum(a == b for a, b in zip(st.outputs, full.outputs[: len(st.outputs)], strict=False))
        ov = Table.of(
            "overload: KV blocks and preemptions",
            [
                ("KV pool", "blocks"),
                ("blocks the requests need", "blocks"),
                *COLUMNS,
                ("outputs equal to ample pool", "requests"),
            ],
            caption=f"{c} requests, all submitted at once, on a KV pool of {p.overload_kv_fraction:.0%} of the blocks "
            "they need together: the scheduler admits by free blocks and preempts (recompute) the newest running "
            "request when a running one needs a block. Outputs are compared with the same requests on an ample pool "
            "(greedy; on a GPU in bf16 a different batch composition can flip near-tied tokens).",
        )
        ov.add(small_blocks, need, *full.row(), len(reqs))
        ov.add(small_blocks, need, *st.row(), same)
        out.tables.append(ov)
        del small

    for label, levels, compiled in (
        ("HF generate (eager)", p.hf_eager, False),
        ("HF generate (static cache, compiled)", p.hf_compiled if ctx.device == "cuda" else [], True),
    ):
        for c in levels:
            if over_budget(f"{label} at {c}"):
                continue
            reqs = _mix(p, c, vocab)  # one static batch of c requests
            try:
                if compiled:  # the first call at a shape compiles: warm up on the same batch, untimed
                    run_hf(model, reqs[:c], c, label, compiled=True)
                st = run_hf(model, reqs, c, label, compiled=compiled)
            except Exception as e:  # noqa: BLE001 - recorded: the other sections still stand
                failed.append(f"{label} at {c}: {e!r:.300}")
                continue
            results[(label, c)] = st
            main.add(*st.row())
            tput.point(label, c, st.tok_s)
            ctx.log(f"{label} c={c}: {st.tok_s:.1f} tok/s")
    out.tables.append(main)
    out.series.append(tput)

    # -- goals
    goals = Table.of("goals (issue 18)", [("goal", ""), ("measured", ""), ("target", ""), ("verdict", "")])
    assess = ctx.device == "cuda" and p.model == "llama-8b"
    gl = p.goal_level
    for label, target in (("HF generate (eager)", 5.0), ("HF generate (static cache, compiled)", 1.5)):
        e, h = results.get(("engine", gl)), results.get((label, gl))
        ratio = e.tok_s / h.tok_s if e and h else math.nan
        verdict = ("MET" if ratio >= target else "NOT MET") if assess and not math.isnan(ratio) else "not assessed"
        goals.add(f"engine vs {label} output tok/s at {gl} concurrent", f"{ratio:.2f}×", f">= {target}×", verdict)
    u = results.get("bw")
    verdict = ("MET" if u >= 0.6 else "NOT MET") if assess and u is not None else "not assessed"
    goals.add(
        "decode bandwidth utilisation at batch 1 (engine step)", f"{100 * u:.1f} %" if u else "n/a", ">= 60 %", verdict
    )
    goals.caption = (
        "Goals are for the H200 run of the 8B shape; on other devices or shapes they are not assessed."
        if not assess
        else "Measured in this run."
    )
    out.tables.append(goals)
    if skipped:
        out.notes.append("Skipped for the time budget (budget_s): " + ", ".join(skipped))
    if failed:
        out.notes.append("Failed sections (error recorded, other sections stand): " + "; ".join(failed))
    if kernel_note:
        out.notes.append(kernel_note.strip())
    return out


def _col(name: str, unit: str):
    from ailab.contract import Column

    return Column(name, unit)


class FTParams(Params):
    pass


def fastertransformer(ctx: Context, p: FTParams) -> Output:
    """d78.e2: FasterTransformer cannot be installed; its closest stand-in's rows (static batching, a preallocated
    KV cache, compiled kernels replayed as CUDA graphs: HF generate with a static cache), re-presented from d78.e1."""
    rec = ctx.derived_rows("d78.e1")
    tables = {t["name"]: t for t in rec.get("tables", [])}
    main = tables.get("output throughput and latency by concurrency")
    if main is None:
        raise Skip("d78.e1's stored result has no throughput table")
    cols = [c["name"] for c in main["columns"]]
    rows = [r for r in main["rows"] if r[0] == "HF generate (static cache, compiled)"]
    if not rows:
        raise Skip(
            "FasterTransformer is not installable (archived NVIDIA C++/CUDA project, no wheels; no registry on the "
            "GPU machine) and d78.e1 has no static-cache compiled generate rows (CUDA only) to stand in for it"
        )
    keep = ["concurrency", "requests", "output throughput", "TTFT p50", "TTFT p99", "ITL p50", "ITL p99"]
    idx = [cols.index(k) for k in keep]
    t = Table.of(
        "latency of the FasterTransformer stand-in (HF generate, static cache, compiled)",
        [(main["columns"][i]["name"], main["columns"][i].get("unit", "")) for i in idx],
        caption="Rows of d78.e1. FasterTransformer's design: static batching, a preallocated contiguous KV cache, "
        "fused kernels; HF generate with cache_implementation='static' has the same scheduling and cache layout, "
        "with kernels fused by torch.compile and replayed as CUDA graphs — not FasterTransformer's own kernels.",
    )
    for r in rows:
        t.add(*[r[i] for i in idx])
    sub = Substitute(
        instead_of="FasterTransformer",
        used="Hugging Face generate with a static KV cache, compiled (torch.compile + CUDA graphs)",
        why="FasterTransformer is archived (superseded by TensorRT-LLM), ships no Python wheels, and its CUDA/C++ "
        "build cannot reach the lent GPU machine (no registry or network there; 64 MiB travels with a call)",
    )
    return Output(tables=[t], substitute=sub, derived_from=["d78.e1"])


FEATURES = [
    # feature, vLLM, FasterTransformer, TensorRT-LLM  (from each project's documentation; see the caption)
    ("KV cache layout", "paged blocks (PagedAttention)", "contiguous, preallocated per batch", "paged KV cache"),
    ("batching", "continuous (iteration-level)", "static", "in-flight (continuous) batching"),
    ("chunked prefill", "yes", "no", "yes"),
    ("prefix caching", "automatic, by block hashes", "no", "KV cache reuse"),
    ("preemption when KV runs out", "recompute (or swap)", "n/a (static)", "scheduler policies"),
    (
        "decode attention kernel",
        "custom paged-attention / FlashAttention / FlashInfer",
        "fused masked MHA",
        "fused paged MHA (XQA)",
    ),
    ("CUDA graphs", "yes, per batch size", "no", "yes"),
    ("tensor / pipeline parallelism", "yes / yes", "yes / yes", "yes / yes"),
    ("quantisation", "FP8, INT8, AWQ, GPTQ, ...", "INT8 weight-only, SmoothQuant", "FP8, INT8, INT4 AWQ, ..."),
    ("speculative decoding", "yes", "no", "yes"),
    ("OpenAI-compatible server", "yes", "no (Triton backend)", "yes (trtllm-serve)"),
]
ENGINE = {
    "KV cache layout": "paged blocks, block tables, free-block allocator",
    "batching": "continuous (iteration-level)",
    "chunked prefill": "yes (token budget per step)",
    "prefix caching": "yes, chained block hashes, LRU of freed blocks",
    "preemption when KV runs out": "recompute",
    "decode attention kernel": "Triton paged decode kernel (CUDA) / SDPA over gathered blocks",
    "CUDA graphs": "yes, decode steps per batch bucket",
    "tensor / pipeline parallelism": "no",
    "quantisation": "no (bf16)",
    "speculative decoding": "no",
    "OpenAI-compatible server": "yes (workloads/llm/server.py)",
}


def frameworks(ctx: Context, p: FTParams) -> Output:
    """d78.e5: what vLLM, FasterTransformer and TensorRT-LLM implement (from their documentation) beside what this
    engine implements, and the engine's measured throughput from d78.e1."""
    t = Table.of(
        "LLM inference frameworks: features",
        [("feature", ""), ("vLLM", ""), ("FasterTransformer", ""), ("TensorRT-LLM", ""), ("this engine", "")],
        caption="vLLM, FasterTransformer and TensorRT-LLM columns summarise their documentation (docs.vllm.ai, "
        "github.com/NVIDIA/FasterTransformer README, nvidia.github.io/TensorRT-LLM), not measurements; none of "
        "them runs here. The last column is what workloads/llm/engine.py implements.",
    )
    for f, v, ft, trt in FEATURES:
        t.add(f, v, ft, trt, ENGINE[f])
    out = Output(tables=[t])
    try:
        rec = ctx.derived_rows("d78.e1")
    except Skip:
        out.notes.append("d78.e1 has no stored result on this host class: no measured rows beside the table.")
        return out
    for tab in rec.get("tables", []):
        if tab["name"] in ("output throughput and latency by concurrency", "goals (issue 18)"):
            m = Table.of(
                "measured (d78.e1): " + tab["name"],
                [(c["name"], c.get("unit", "")) for c in tab["columns"]],
                caption=tab.get("caption", ""),
            )
            for r in tab["rows"]:
                m.add(*r)
            out.tables.append(m)
    out.derived_from = ["d78.e1"]
    return out


class LongRunParams(EngineParams, BudgetParams):
    duration_s: float = Field(gt=0, description="seconds of steady load")
    cuda_duration_s: float | None = None
    window_s: float = Field(gt=0, description="report window")
    cuda_window_s: float | None = None
    concurrency: Count = 32
    cuda_concurrency: Count | None = None


def long_run(ctx: Context, p: LongRunParams) -> Output:
    """d84.e4: the engine under a steady closed-loop load for duration_s: per-window throughput, TTFT, ITL,
    memory and errors (drift = last window vs first)."""
    import resource

    import torch

    from workloads.llm.engine import SamplingParams
    from workloads.llm.serving_bench import pct, sharegpt_stream

    p = p.for_device(ctx.device)
    budget = RunBudget(ctx, p.budget_s)
    budget.require_time("build the engine")
    budget.log(f"building {p.model} ({p.dtype}) and the engine")
    # graphs are captured per batch bucket up to max_num_seqs; no batch here exceeds the concurrency, so larger
    # buckets would only cost capture time (on CPU max_num_seqs also sizes the KV pool: left as bound)
    over = {"max_num_seqs": min(p.max_num_seqs, p.concurrency)} if ctx.device == "cuda" else {}
    model, engine, _, _ = _build(ctx, p, **over)
    budget.log(f"engine ready: {engine.alloc.usable} KV blocks, CUDA graphs for batch sizes {sorted(engine._graphs)}")
    vocab = model.config.vocab_size
    windows = max(1, int(p.duration_s // p.window_s + 1e-9))
    # the last step of a window ends a little after it: keep a tenth of a window spare
    spare = budget.left() - 0.1 * p.window_s
    fit = windows if spare == math.inf else min(windows, int(max(0.0, spare) // p.window_s))
    if fit < windows:
        budget.skip(
            f"windows {fit + 1}-{windows} ({fit * p.window_s:g}-{windows * p.window_s:g} s of load)",
            f"{budget.left():.0f} s of the {p.budget_s:g} s budget left after building the engine",
        )
    t = Table.of(
        "long run: per window",
        [
            ("window end", "s"),
            ("requests finished", ""),
            ("output throughput", "tok/s"),
            ("TTFT p50", "ms"),
            ("TTFT p99", "ms"),
            ("ITL p50", "ms"),
            ("ITL p99", "ms"),
            ("KV blocks used", "%"),
            ("preemptions", ""),
            ("GPU memory allocated" if ctx.device == "cuda" else "process max RSS", "MiB"),
            ("errors", ""),
        ],
        caption=f"{p.concurrency} requests kept in flight for {fit * p.window_s:g} s (a new request replaces each "
        f"finished one; ShareGPT-like lengths, seed {p.seed}); the engine in-process, {ctx.device}, {p.model}, "
        f"{p.dtype}. Errors: exceptions raised by a step or requests ending otherwise than by length.",
    )
    series = Series("ITL p50 over the run", _col("time", "s"), _col("ITL p50", "ms"))
    stream = iter(sharegpt_stream(10**6, p.seed, vocab, p.prompt_median, 0.9, (8, p.prompt_max), p.output_median,
                                0.7, (8, p.output_max)))  # fmt: skip
    live: set[str] = set()
    errors = 0
    t0 = time.perf_counter()
    w_start, w_reqs, w_tokens, pre0 = t0, [], 0, 0
    rows = []
    if fit:
        budget.admit(f"{fit} windows of {p.window_s:g} s")
    while len(rows) < fit:
        if budget.expired():
            what = f"{len(rows)} of {fit} windows measured"
            budget.partial(f"{fit} windows of {p.window_s:g} s", what, measured=bool(rows))
            break
        while len(live) < p.concurrency:
            r = next(stream)
            live.add(engine.add_request(r.prompt, SamplingParams(max_tokens=r.max_tokens)).id)
        try:
            ev = engine.step()
        except Exception as e:  # noqa: BLE001 - counted: the run reports errors instead of dying
            errors += 1
            ctx.log(f"step failed: {e!r}")
            for req in list(engine.running) + list(engine.waiting):
                engine.abort(req)
            ev = []
        w_tokens += len(ev)
        for req in engine.finished:
            live.discard(req.id)
            if req.finish_reason not in ("length", "stop"):
                errors += 1
            w_reqs.append(req)
        engine.finished.clear()
        now = time.perf_counter()
        if now - w_start >= p.window_s:
            if ctx.device == "cuda":
                mem = torch.cuda.memory_allocated() / 2**20
            else:
                mem = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
            ttft = [r.ttft for r in w_reqs]
            itl = [x for r in w_reqs for x in r.itl]
            row = [now - t0, len(w_reqs), w_tokens / (now - w_start), 1e3 * pct(ttft, 0.5), 1e3 * pct(ttft, 0.99),
                   1e3 * pct(itl, 0.5), 1e3 * pct(itl, 0.99), 100 * engine.kv_usage(),
                   engine.stats.preemptions - pre0, mem, errors]  # fmt: skip
            t.add(*row)
            rows.append(row)
            series.point("ITL p50", row[0], row[5])
            budget.log(
                f"window {len(rows)}/{fit}: {len(w_reqs)} requests, {row[2]:.0f} tok/s, ITL p50 {row[5]:.1f} ms, "
                f"errors {errors}"
            )
            w_start, w_reqs, w_tokens, pre0 = now, [], 0, engine.stats.preemptions
    if fit and len(rows) == fit:
        budget.done(f"{fit} windows of {p.window_s:g} s")
    out = Output(tables=[t], series=[series] if rows else [], substitute=VLLM)
    if len(rows) >= 2:
        a, b = rows[0], rows[-1]
        out.notes.append(
            f"Drift, last window vs first: output throughput {b[2] / a[2]:.2f}×, ITL p50 {b[5] / a[5]:.2f}×, "
            f"TTFT p50 {b[3] / a[3]:.2f}×; memory {b[9] - a[9]:+.1f} MiB; errors {b[10]}."
        )
    return budget.finish(out)


class KVPathParams(Params):
    requests: Count = 24
    system_prompt_chars: Count = 200
    question_chars: Count = 40
    max_tokens: Count = 16
    seed: Annotated[int, Field(strict=True, ge=0)] = 0


def kv_in_path(ctx: Context, p: KVPathParams) -> Output:
    """d88.e2: the platform's LLM service (started by the local platform) with and without its prefix KV cache:
    chat requests sharing a system prompt, TTFT measured over SSE by the client, hits read from /metrics."""
    import asyncio
    import random

    import aiohttp

    from workloads.llm import charlm
    from workloads.llm.serving_bench import pct

    held = charlm.decode(charlm.corpus()[1])
    rnd = random.Random(p.seed)
    system = held[: p.system_prompt_chars]
    qs = []
    for _ in range(p.requests):
        s = rnd.randrange(p.system_prompt_chars, len(held) - p.question_chars)
        qs.append(held[s : s + p.question_chars])

    async def drive(base: str) -> tuple[list[float], list[float], list[str], str]:
        ttft, lat, texts = [], [], []
        async with aiohttp.ClientSession() as s:
            for q in qs:  # one at a time: the cache, not batching, is what differs
                msgs = [{"role": "system", "content": system}, {"role": "user", "content": q}]
                body = {"model": "char", "max_tokens": p.max_tokens, "stream": True, "messages": msgs}
                t0 = time.perf_counter()
                first, text = None, ""
                async with s.post(base + "/v1/chat/completions", json=body) as r:
                    if r.status != 200:
                        raise RuntimeError(f"llm service answered {r.status}: {await r.text()}")
                    async for line in r.content:
                        ln = line.decode().strip()
                        if not ln.startswith("data: ") or ln == "data: [DONE]":
                            continue
                        import json

                        delta = json.loads(ln[6:])["choices"][0]["delta"].get("content", "")
                        if delta and first is None:
                            first = time.perf_counter() - t0
                        text += delta
                lat.append(time.perf_counter() - t0)
                ttft.append(first or math.nan)
                texts.append(text)
            metrics = await (await s.get(base + "/metrics")).text()
        return ttft, lat, texts, metrics

    t = Table.of(
        "LLM service with and without its prefix KV cache",
        [
            ("prefix caching", ""),
            ("requests", ""),
            ("prompt tokens reused", "%"),
            ("TTFT p50", "ms"),
            ("TTFT p99", "ms"),
            ("latency p50", "ms"),
            ("outputs equal to no cache", "requests"),
        ],
        caption=f"{p.requests} chat requests sent one at a time over HTTP to the platform's `llm` service (char "
        f"model on {ctx.device}); each shares a {p.system_prompt_chars}-character system prompt and asks a "
        f"{p.question_chars}-character question from held-out text; {p.max_tokens} new tokens, greedy, streamed "
        "(SSE). TTFT and latency are measured by the client; reuse is read from the service's /metrics.",
    )
    runs = {}
    for on in (False, True):
        opts = {"llm.model": "char", "llm.device": "cpu", "llm.prefix_caching": on}
        with ctx.platform(services=["llm"], state_dir=ctx.workdir / f"llm-{on}", options=opts) as plat:
            runs[on] = asyncio.run(drive(plat.url("llm", "http")))
    for on in (False, True):
        ttft, lat, texts, metrics = runs[on]
        vals = {ln.split("{")[0]: float(ln.split()[-1]) for ln in metrics.splitlines() if ln and ln[0] != "#"}
        reuse = vals.get("llm_prefix_cache_hit_tokens_total", 0) / max(1.0, vals.get("llm_prompt_tokens_total", 0))
        same = sum(a == b for a, b in zip(texts, runs[False][2], strict=True))
        t.add("on" if on else "off", len(ttft), 100 * reuse, 1e3 * pct(ttft, 0.5), 1e3 * pct(ttft, 0.99),
              1e3 * pct(lat, 0.5), same)  # fmt: skip
    return Output(tables=[t])
