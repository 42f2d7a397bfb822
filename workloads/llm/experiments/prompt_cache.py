"""Prompt caching (d81.e1–e4): an exact-match response cache and a prefix KV cache, on workloads with high and low
repeat rates, with and without the caches.

Every request is served on a paged KV cache (same code path with and without caching), so differences come from
the caches alone. Outputs are greedy; each cached configuration's outputs are compared with the uncached run.
torch is imported inside the runners (through the area's modules).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from pydantic import Field

from ailab.contract import Column, Context, Output, Series, Table
from workloads.llm.budget import RunBudget, coverage_order
from workloads.llm.experiments.common import (
    BudgetParams,
    Count,
    LLMParams,
    NonNegative,
    Share,
    Shares,
    build_model,
    threads_note,
)

if TYPE_CHECKING:
    from workloads.llm.model import DecoderLM, ModelConfig
    from workloads.llm.prompt_cache import Server, WorkloadSpec

CONFIGS = ("no cache", "response cache", "prefix KV cache", "response + prefix KV")


class ServingParams(LLMParams):
    """A request stream served on a paged KV cache, with or without a response and a prefix cache."""

    requests: Count
    shared_prefix: Share = Field(description="chance a new prompt starts with the shared system prompt")
    prefix_len: NonNegative = Field(description="tokens of the shared system prompt")
    cuda_prefix_len: NonNegative | None = None
    suffix_len: Count = Field(description="tokens of each request's own part")
    cuda_suffix_len: Count | None = None
    new_tokens: Count
    cuda_new_tokens: Count | None = None
    block_size: Count = Field(description="tokens per paged-cache block")
    response_capacity: Count = Field(description="responses the response cache keeps (LRU)")
    prefix_cache_requests: Count = Field(description="requests' worth of blocks the prefix store keeps")
    seed: NonNegative = 0


class WorkloadParams(ServingParams):
    repeat: Share = Field(description="chance a request repeats an earlier prompt exactly")


class WithWithoutParams(ServingParams, BudgetParams):
    repeats: Shares = Field(description="repeat rates of the streams compared")


def _spec(p: ServingParams, repeat: float) -> WorkloadSpec:
    from workloads.llm.prompt_cache import WorkloadSpec

    return WorkloadSpec(
        requests=p.requests,
        repeat=repeat,
        shared_prefix=p.shared_prefix,
        prefix_len=p.prefix_len,
        suffix_len=p.suffix_len,
        seed=p.seed,
    )


def _servers(
    model: DecoderLM, cfg: ModelConfig, ctx: Context, p: ServingParams, prompts: list[list[int]], configs
) -> dict[str, Server]:
    """One server per cache configuration, each with its own pool and caches."""
    from workloads.llm.paged import BlockPool, PrefixStore
    from workloads.llm.prompt_cache import ResponseCache, Server

    new, bs, keep = p.new_tokens, p.block_size, p.prefix_cache_requests
    per_req = -(-(max(map(len, prompts)) + new) // bs)
    out = {}
    for c in configs:
        pool = BlockPool(cfg, per_req * (keep + 2), bs, ctx.device)
        responses = ResponseCache(p.response_capacity) if "response" in c else None
        prefixes = PrefixStore(pool, per_req * keep) if "prefix" in c else None
        out[c] = Server(model, new, pool, responses, prefixes, model_id=str(cfg.as_dict()))
    return out


def _hits(server: Server) -> dict[str, float]:
    r, pre = server.responses, server.prefixes
    return {
        "request hit rate (response)": r.hit_rate if r else 0.0,
        "token hit rate (prefix)": pre.stats.token_hit_rate if pre else 0.0,
        "request hit rate (prefix)": pre.stats.request_hit_rate if pre else 0.0,
    }


def _pct(xs: list[float], q: float) -> float:
    s = sorted(xs)
    return s[min(len(s) - 1, int(q * len(s)))]


def _warm_model(ctx: Context, p: ServingParams, warm: list[int]) -> tuple[DecoderLM, ModelConfig]:
    """The timed model, built and warmed up (one untimed generation) once per run."""
    from workloads.llm.generate import generate
    from workloads.llm.kvcache import make_cache

    model, cfg = build_model(ctx, p)
    generate(model, warm, 2, make_cache("full", cfg, len(warm) + 2, ctx.device))  # warm-up, not counted
    return model, cfg


def _compare(
    ctx: Context,
    p: ServingParams,
    spec: WorkloadSpec,
    configs: tuple[str, ...] = CONFIGS,
    built: tuple[DecoderLM, ModelConfig] | None = None,
    budget: RunBudget | None = None,
) -> tuple[Table, dict]:
    """Serve the stream of `spec` under each configuration, request by request; `built` is a warmed model to
    reuse (else one is built and warmed here). With a `budget`, serving stops between requests once it is spent:
    summary["_served"] < spec.requests then, and the table's caption says so."""
    from workloads.llm import charlm
    from workloads.llm.prompt_cache import Served, make_workload

    prompts = make_workload(spec, charlm.corpus()[1])
    model, cfg = built or _warm_model(ctx, p, prompts[0])
    t = Table.of(
        f"latency by cache configuration (repeat {spec.repeat:.0%}, shared prefix {spec.shared_prefix:.0%})",
        [
            ("configuration", ""),
            ("response-cache hits", "%"),
            ("prefix tokens reused", "%"),
            ("requests with a prefix hit", "%"),
            ("mean latency", "ms"),
            ("p50", "ms"),
            ("p95", "ms"),
            ("mean TTFT", "ms"),
            ("outputs equal to no cache", "requests"),
            ("requests", ""),
        ],
        caption=f"{spec.requests} requests of {spec.prefix_len}+{spec.suffix_len} prompt tokens (held-out text), "
        f"{p.new_tokens} new tokens each, greedy; {ctx.device}, random-weight model d_model "
        f"{cfg.d_model}, {cfg.n_layers} layers, {cfg.dtype}; hit rates counted while serving; each request is served "
        "by every configuration in turn." + threads_note(ctx),
    )
    servers = _servers(model, cfg, ctx, p, prompts, configs)
    records: dict[str, list[Served]] = {c: [] for c in configs}
    for i, q in enumerate(prompts):  # request by request, every configuration in turn: drift hits all alike
        if budget is not None and budget.expired():
            t.caption += (
                f" Cut short by the time budget after {i} of {len(prompts)} requests: the columns cover the first {i} "
                "requests of the stream only."
            )
            break
        for c, srv in servers.items():
            records[c].append(srv.handle(q))
        if budget is not None and (i + 1) % 4 == 0:
            budget.log(f"repeat {spec.repeat:.0%}: {i + 1}/{len(prompts)} requests served by every configuration")
    prompts = prompts[: len(records[configs[0]])]
    if not prompts:
        return t, {"_served": 0}
    ref = records[configs[0]]
    summary = {}
    for c in configs:
        served, hits = records[c], _hits(servers[c])
        lat = [1e3 * s.latency_s for s in served]
        same = sum(a.tokens == b.tokens for a, b in zip(served, ref, strict=True))
        t.add(
            c,
            100 * hits["request hit rate (response)"],
            100 * hits["token hit rate (prefix)"],
            100 * hits["request hit rate (prefix)"],
            sum(lat) / len(lat),
            _pct(lat, 0.5),
            _pct(lat, 0.95),
            1e3 * sum(s.ttft_s for s in served) / len(served),
            same,
            len(served),
        )
        summary[c] = {"mean_ms": sum(lat) / len(lat), "same": same, **hits, "served": served}
    summary["_divergence"] = _divergences(model, cfg, ctx, prompts, records, configs[0])
    summary["_served"] = len(prompts)
    return t, summary


def _divergences(model, cfg, ctx: Context, prompts, records, ref_name: str) -> Table | None:
    """At each request whose greedy output differs from the uncached run: the first differing token's top-2 logit
    gap, computed twice on the same tokens (no cache: the whole sequence re-run; full cache: prefill then one step),
    beside how far the two code paths' logits differ there (d, the largest |difference| over the vocabulary). Each of
    the two competing logits can move by up to d between the paths, so their order can flip by rounding alone only
    when the gap is at most 2d: such a gap is a near-tie; a larger one would point at a bug."""
    import torch

    from workloads.llm.generate import forward_all
    from workloads.llm.kvcache import FullCache, NoCache

    ref = records[ref_name]
    t = Table.of(
        "divergences from the uncached output: top-2 logit gap at the first differing token",
        [
            ("configuration", ""),
            ("request", ""),
            ("kind", ""),
            ("first differing token", "index"),
            ("top-2 gap, no cache", "logit"),
            ("top-2 gap, full cache", "logit"),
            ("max |logit difference| between the two", "logit"),
            ("near-tie (gap ≤ 2 × difference)", ""),
        ],
        caption="Logits of the uncached run's sequence up to the token before the divergence, recomputed by two "
        f"code paths ({cfg.dtype}, {ctx.device}); the gap is top-1 minus top-2 of that step's logits.",
    )
    for c, served in records.items():
        if c == ref_name:
            continue
        for i, (a, b) in enumerate(zip(served, ref, strict=True)):
            if a.tokens == b.tokens:
                continue
            k = next(j for j, (x, y) in enumerate(zip(a.tokens, b.tokens, strict=True)) if x != y)
            seq = prompts[i] + b.tokens[:k]
            with torch.no_grad():
                un = forward_all(model, seq, NoCache())[-1].float()
                full = FullCache(cfg, capacity=len(seq), device=ctx.device)
                forward_all(model, seq[:-1], full)
                fc = forward_all(model, seq[-1:], full, start=len(seq) - 1)[-1].float()

            def gap(x: torch.Tensor) -> float:
                v = torch.topk(x, 2).values
                return float(v[0] - v[1])

            diff = float((un - fc).abs().max())
            t.add(c, i, a.kind, k, gap(un), gap(fc), diff, "yes" if gap(un) <= 2 * diff else "no")
    return t if t.rows else None


def _equal_note(summary: dict) -> str:
    summary = {c: s for c, s in summary.items() if not c.startswith("_")}
    n = len(next(iter(summary.values()))["served"])
    bad_ = [c for c, s in summary.items() if s["same"] != n]
    if not bad_:
        return (
            f"Greedy outputs with every cache configuration are identical to the uncached outputs ({n}/{n} requests)."
        )
    return "Outputs differ from the uncached run under: " + ", ".join(
        f"{c} ({summary[c]['same']}/{n} equal)" for c in bad_
    )


def baseline(ctx: Context, p: WorkloadParams) -> Output:
    """d81.e1: exact-match prompt (response) cache on a stream with repeated prompts: hits vs misses."""
    p = p.for_device(ctx.device)
    t, summary = _compare(ctx, p, _spec(p, p.repeat), ("no cache", "response cache"))
    served = summary["response cache"]["served"]
    kinds = Table.of(
        "response cache: hit vs miss latency",
        [("request kind", ""), ("requests", ""), ("mean latency", "ms")],
        caption="A hit is looked up by sha256(model id, prompt tokens, sampling params, max_new) and returns the "
        "stored tokens.",
    )
    for k in ("miss", "response-hit"):
        lat = [1e3 * s.latency_s for s in served if s.kind == k]
        kinds.add(k, len(lat), sum(lat) / len(lat) if lat else float("nan"))
    out = Output(tables=[t, kinds])
    out.notes.append(_equal_note(summary))
    if summary["_divergence"] is not None:
        out.tables.append(summary["_divergence"])
    return out


def workload(ctx: Context, p: WorkloadParams) -> Output:
    """d81.e2 / d81.e3: one workload (its repeat and shared-prefix rates are params) under all cache configurations."""
    p = p.for_device(ctx.device)
    t, summary = _compare(ctx, p, _spec(p, p.repeat))
    s = Series("latency by cache configuration", Column("configuration", ""), Column("mean", "ms"), kind="bar")
    for c, v in summary.items():  # x is the configuration's name: the bar plot labels its ticks with it
        if c.startswith("_"):
            continue
        s.lines.setdefault("request latency", []).append([c, v["mean_ms"]])
        s.lines.setdefault("TTFT", []).append([c, 1e3 * sum(r.ttft_s for r in v["served"]) / len(v["served"])])
    out = Output(tables=[t], series=[s])
    if summary["_divergence"] is not None:
        out.tables.append(summary["_divergence"])
    base = summary["no cache"]["mean_ms"]
    best = min((c for c in summary if not c.startswith("_")), key=lambda c: summary[c]["mean_ms"])
    out.notes += [
        _equal_note(summary),
        f"Fastest here: {best}, mean latency {summary[best]['mean_ms'] / base:.2f}× the uncached mean.",
    ]
    return out


def with_without(ctx: Context, p: WithWithoutParams) -> Output:
    """d81.e4: latency with and without the caches as the repeat rate of the stream grows.

    The model is built and warmed once; the repeat rates are served in coverage order (both ends first) within
    the run's time budget: a rate that does not fit is listed as not done, one cut short says so in its caption
    and stays out of the plots. Tables and plots list the rates in ascending order.
    """
    from workloads.llm import charlm
    from workloads.llm.prompt_cache import make_workload

    p = p.for_device(ctx.device)
    budget = RunBudget(ctx, p.budget_s)
    budget.require_time("build the model")
    budget.log(f"building the model ({p.model.d_model} d_model, {p.model.n_layers} layers, {p.model.dtype})")
    streams = {r: make_workload(_spec(p, r), charlm.corpus()[1]) for r in p.repeats}
    # what a rate costs: the requests that reach the model, over the configurations (exact repeats stop at the
    # response cache), so a 90 %-repeat stream is not expected to take as long as a 0 % one
    cost = {r: 2 * len(q) + 2 * sum(x not in q[:i] for i, x in enumerate(q)) for r, q in streams.items()}
    built = _warm_model(ctx, p, streams[p.repeats[0]][0])
    budget.log("model built and warmed up")
    done: dict[float, tuple[Table, dict]] = {}
    per_run = 0.0  # seconds per request that reached the model, the most of any rate done
    for r in coverage_order(p.repeats):
        row = f"repeat {r:.0%}"
        if not budget.admit(row, per_run * cost[r] if per_run else None):
            continue
        t, summary = _compare(ctx, p, _spec(p, r), built=built, budget=budget)
        if summary["_served"] == p.requests:
            budget.done(row, f"{p.requests} requests x {len(CONFIGS)} configurations, {cost[r]} reached the model")
            per_run = max(per_run, budget.durations[row] / cost[r])
        elif summary["_served"]:
            budget.partial(row, f"{summary['_served']} of {p.requests} requests served")
        else:
            budget.skip(row, budget.why())
            continue
        done[r] = (t, summary)
    out = Output()
    lat = Series("mean latency vs repeat rate", Column("repeated prompts", "%"), Column("mean latency", "ms"))
    hit = Series(
        "hit rate vs mean latency (response + prefix KV)",
        Column("response-cache hits", "%"),
        Column("mean latency", "ms"),
        kind="scatter",
    )
    for r in sorted(done):
        t, summary = done[r]
        out.tables.append(t)
        if summary["_divergence"] is not None:
            out.tables.append(summary["_divergence"])
        out.notes.append(f"repeat {r:.0%}: " + _equal_note(summary))
        if summary["_served"] < p.requests:
            continue  # a stream cut short is not comparable with whole ones: table only
        for c, v in summary.items():
            if c.startswith("_"):
                continue
            lat.point(c, 100 * r, v["mean_ms"])
        both = summary["response + prefix KV"]
        hit.point("response + prefix KV", 100 * both["request hit rate (response)"], both["mean_ms"])
    out.series += [s for s in (lat, hit) if s.lines]
    return budget.finish(out)
