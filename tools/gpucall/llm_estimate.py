"""How long the LLM area's H200 runs of d81.e4, d82.e2 and d84.e4 should take, before spending device time on them.

    python -m tools.gpucall.llm_estimate            # each run's work, the rates used and their sources, seconds

The work is counted from the bindings' CUDA parameters; for d81.e4 the request stream of every repeat rate is
generated and pushed through the response cache and the prefix store (no model), so the requests each
configuration runs through the model and the tokens it prefills are exact. The rates come from committed H200
results of the same model shape (each source named in the output); where the code changed since (d81.e4: the paged
cache's block table is uploaded once per forward now) the old rate is an upper bound and the plain KV cache's
decode step a lower one. What no committed GPU result measured is an assumption and printed as one.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from ailab.contract.paths import results_dir

CHAR_MODEL_S = 15.0  # assumption: char-model training (300 small steps) + its quality table on a GPU, not measured


@dataclass
class Estimate:
    exp: str
    low_s: float
    high_s: float
    lines: list[str]


def _result(exp: str, host: str = "h200") -> dict[str, Any]:
    path = results_dir() / exp.split(".")[0] / f"{exp}.{host}.json"
    return json.loads(path.read_text(encoding="utf-8"))


def _table(rec: dict[str, Any], starts: str) -> tuple[list[str], list[list[Any]]]:
    t = next(t for t in rec["tables"] if (t["name"] or "").startswith(starts) or not starts)
    return [c["name"] for c in t["columns"]], t["rows"]


def _params(exp: str) -> Any:
    from ailab.curriculum import load_catalogue
    from ailab.runner import resolve, resolve_params

    (e,) = resolve(exp, load_catalogue(check_runners=False))
    typed, _ = resolve_params(e, quick=False)
    return typed.for_device("cuda")


def d81_work(p: Any) -> dict[float, dict[str, tuple[int, int]]]:
    """Per repeat rate and configuration: (requests run through the model, prompt tokens prefilled)."""
    from workloads.llm import charlm
    from workloads.llm.experiments.prompt_cache import CONFIGS, _spec
    from workloads.llm.model import ModelConfig
    from workloads.llm.paged import BlockPool, PrefixStore
    from workloads.llm.prompt_cache import ResponseCache, Sampling, make_workload

    tiny = ModelConfig(vocab_size=128, d_model=8, n_layers=1, n_heads=2)  # the pool's hit logic is shape-free
    out: dict[float, dict[str, tuple[int, int]]] = {}
    for r in p.repeats:
        prompts = make_workload(_spec(p, r), charlm.corpus()[1])
        per_req = -(-(max(map(len, prompts)) + p.new_tokens) // p.block_size)
        row = {}
        for c in CONFIGS:
            responses = ResponseCache(p.response_capacity) if "response" in c else None
            pool = BlockPool(tiny, per_req * (p.prefix_cache_requests + 2), p.block_size)
            prefixes = PrefixStore(pool, per_req * p.prefix_cache_requests) if "prefix" in c else None
            runs = tokens = 0
            for q in prompts:
                key = ResponseCache.key("m", q, Sampling(), p.new_tokens)
                if responses is not None and responses.get(key) is not None:
                    continue
                blocks = prefixes.match(q) if prefixes else []
                table = blocks + [pool.alloc() for _ in range(per_req - len(blocks))]
                runs, tokens = runs + 1, tokens + len(q) - len(blocks) * p.block_size
                if prefixes:
                    prefixes.insert(q, table)
                for b in table:
                    pool.decref(b)
                if responses is not None:
                    responses.put(key, [])
            row[c] = (runs, tokens)
        out[r] = row
    return out


def d81() -> Estimate:
    p = _params("d81.e4")
    rec = _result("d81.e3")
    cols, rows = _table(rec, "latency by cache configuration")
    nc = next(r for r in rows if r[0] == "no cache")
    mean_s, ttft_s = nc[cols.index("mean latency")] / 1e3, nc[cols.index("mean TTFT")] / 1e3
    n3 = rec["params"]["requests"]
    step_hi = (mean_s - ttft_s) / (p.new_tokens - 1)
    prompt = p.prefix_len + p.suffix_len
    prefill_per_token = ttft_s / prompt
    served_s = sum(r[cols.index("mean latency")] / 1e3 * r[cols.index("requests")] for r in rows)
    overhead = rec["duration_s"] - served_s  # build + warm-up + pools + divergence table, once per run now
    lc, lrows = _table(_result("d82.e3"), "")
    step_lo = min(r[lc.index("per token")] for r in lrows if r[lc.index("KV strategy")] == "full") / 1e3
    work = d81_work(p)
    runs = sum(n for row in work.values() for n, _ in row.values())
    tokens = sum(t for row in work.values() for _, t in row.values())
    decode = runs * (p.new_tokens - 1)
    low = overhead + tokens * prefill_per_token + decode * step_lo
    high = overhead + tokens * prefill_per_token + decode * step_hi
    lines = [
        f"{len(p.repeats)} rates x {p.requests} requests x 4 configurations; run through the model: "
        + "; ".join(f"{r:.0%}: " + ", ".join(f"{c} {n}" for c, (n, _) in row.items()) for r, row in work.items()),
        f"{runs} model runs, {tokens} prompt tokens prefilled, {decode} decode steps",
        f"paged decode step {1e3 * step_hi:.1f} ms (d81.e3.h200, {n3} requests, before the block-table fix: upper) "
        f"to {1e3 * step_lo:.1f} ms (d82.e3.h200, plain KV cache: lower); "
        f"prefill {1e6 * prefill_per_token:.1f} us/token",
        f"once per run: {overhead:.1f} s (d81.e3.h200 duration less its served requests: build, warm-up, pools; "
        "builds skip torch's default init since: an upper bound)",
    ]
    return Estimate("d81.e4", low, high, lines)


def d82() -> Estimate:
    p = _params("d82.e2")
    cols, rows = _table(_result("d82.e3"), "")
    at = [r for r in rows if r[cols.index("input")] == p.length]
    if not at:
        raise SystemExit(f"d82.e3.h200 has no row at {p.length} tokens: cannot estimate d82.e2")
    gen = sum(r[cols.index("TTFT")] / 1e3 + (p.new_tokens - 1) * r[cols.index("per token")] / 1e3 for r in at)
    c1 = _result("d82.e1")
    cc, crow = _table(c1, "")
    build = c1["duration_s"] - (c1["params"]["repeats"] + 1) * sum(r[cc.index("prefill")] / 1e3 for r in crow)
    rounds = (p.repeats + 1) * gen
    lines = [
        f"{p.repeats + 1} rounds (1 warm-up) x {len(at)} settings of one {p.length}-token input + {p.new_tokens} "
        f"tokens: {rounds:.1f} s (TTFT and per-token rows of d82.e3.h200 at {p.length})",
        f"model build {build:.1f} s (d82.e1.h200 duration less its prefills; before builds skipped the default init)",
        f"char model training + quality table: {CHAR_MODEL_S:g} s (assumed: no committed GPU result isolates it)",
    ]
    base = build + rounds
    return Estimate("d82.e2", base, base + CHAR_MODEL_S, lines)


def d84() -> Estimate:
    p = _params("d84.e4")
    old = _result("d84.e4")
    fixed = old["duration_s"] - old["params"]["cuda_duration_s"]
    lines = [
        f"{p.duration_s:g} s of load ({p.duration_s / p.window_s:g} windows of {p.window_s:g} s)",
        f"model build + engine (KV pool, CUDA graph capture): {fixed:.1f} s (the first d84.e4.h200 run less its "
        "load; it captured graphs up to batch 256 and made its 10**6-request stream up front, this run neither: "
        "an upper bound)",
    ]
    return Estimate("d84.e4", p.duration_s, fixed + p.duration_s, lines)


def main() -> None:
    total_lo = total_hi = 0.0
    for est in (d81(), d82(), d84()):
        budget = _params(est.exp).budget_s
        print(f"{est.exp}: {est.low_s:.0f}-{est.high_s:.0f} s on an H200 (binding's cuda_budget_s {budget:g})")
        for line in est.lines:
            print(f"  {line}")
        total_lo, total_hi = total_lo + est.low_s, total_hi + est.high_s
    print(f"all three: {total_lo:.0f}-{total_hi:.0f} s of experiments, plus the machine start and the suite's setup")


if __name__ == "__main__":
    main()
