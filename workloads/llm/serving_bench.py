"""Serving benchmarks of the engine vs Hugging Face `generate` (library code of d78.e1 / d84.e4; not a runner).

- `sharegpt_like(n, seed, ...)`: a seeded request mix whose prompt and output lengths follow log-normal
  distributions clipped to a range (the shape of ShareGPT conversation lengths: many short, a long tail); token ids
  are random (the model's weights are random too, so text would add nothing). `sharegpt_stream`: the same
  requests, made as they are taken (a long run's open-ended stream).
- `run_engine(engine, reqs, concurrency)`: a closed loop that keeps `concurrency` requests in flight (a new one is
  added as soon as one finishes); TTFT counts from a request's submission, inter-token latency is the gap between a
  request's consecutive tokens.
- `run_hf(model, reqs, batch, ...)`: static batching with `generate`: requests in batches of `batch`, left-padded
  to the batch's longest prompt, each batch generating its longest requested output (no EOS: every request asks
  for exactly its length); only the tokens each request asked for count. Step times come from a logits processor
  that synchronises and reads the clock as each step's logits arrive.
"""

from __future__ import annotations

import itertools
import math
import statistics
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import torch

from workloads.llm.engine import LLMEngine, SamplingParams


@dataclass(frozen=True)
class BenchRequest:
    prompt: list[int]
    max_tokens: int


def sharegpt_stream(
    n: int,
    seed: int,
    vocab: int,
    prompt_median: int = 160,
    prompt_sigma: float = 0.9,
    prompt_range: tuple[int, int] = (8, 1024),
    output_median: int = 128,
    output_sigma: float = 0.7,
    output_range: tuple[int, int] = (8, 256),
) -> Iterator[BenchRequest]:
    """The requests of `sharegpt_like`, made one at a time as they are taken (same draws, same order).

    A long run takes an open-ended stream (n = 10**6) but serves a few thousand requests: making every prompt up
    front cost tens of seconds and gigabytes before the first request.
    """
    g = torch.Generator().manual_seed(seed)
    zp = torch.randn(n, generator=g, dtype=torch.float64)  # the length draws come first, as they always did
    zo = torch.randn(n, generator=g, dtype=torch.float64)

    def length(z: torch.Tensor, median: int, sigma: float, lo: int, hi: int) -> int:
        return min(hi, max(lo, round(median * math.exp(sigma * float(z)))))

    for i in range(n):
        p = length(zp[i], prompt_median, prompt_sigma, *prompt_range)
        o = length(zo[i], output_median, output_sigma, *output_range)
        yield BenchRequest(torch.randint(1, vocab, (p,), generator=g).tolist(), o)


def sharegpt_like(n: int, seed: int, vocab: int, *lengths: Any, **named: Any) -> list[BenchRequest]:
    """n requests with log-normal prompt/output lengths (medians, sigmas of the log, clipped), seeded: the whole
    `sharegpt_stream` (same parameters) as a list."""
    return list(sharegpt_stream(n, seed, vocab, *lengths, **named))


def pct(xs: list[float], q: float) -> float:
    """The q-quantile (nearest rank) of xs; nan when empty."""
    if not xs:
        return math.nan
    s = sorted(xs)
    return s[min(len(s) - 1, max(0, math.ceil(q * len(s)) - 1))]


@dataclass
class RunStats:
    system: str
    concurrency: int
    requests: int
    output_tokens: int
    wall_s: float
    ttft: list[float] = field(default_factory=list)
    itl: list[float] = field(default_factory=list)
    preemptions: int = 0
    peak_kv_usage: float = math.nan
    outputs: list[list[int]] = field(default_factory=list)

    @property
    def tok_s(self) -> float:
        return self.output_tokens / self.wall_s if self.wall_s else math.nan

    def row(self) -> list[Any]:
        ms = 1e3
        return [
            self.system,
            self.concurrency,
            self.requests,
            self.output_tokens,
            self.wall_s,
            self.tok_s,
            ms * pct(self.ttft, 0.5),
            ms * pct(self.ttft, 0.99),
            ms * pct(self.itl, 0.5),
            ms * pct(self.itl, 0.99),
            self.preemptions,
            100 * self.peak_kv_usage if not math.isnan(self.peak_kv_usage) else math.nan,
        ]


COLUMNS = [
    ("system", ""),
    ("concurrency", "requests"),
    ("requests", ""),
    ("output tokens", ""),
    ("wall", "s"),
    ("output throughput", "tok/s"),
    ("TTFT p50", "ms"),
    ("TTFT p99", "ms"),
    ("ITL p50", "ms"),
    ("ITL p99", "ms"),
    ("preemptions", ""),
    ("peak KV blocks used", "%"),
]


def sync(device: Any) -> None:
    if str(device).startswith("cuda"):
        torch.cuda.synchronize()


def run_engine(engine: LLMEngine, reqs: list[BenchRequest], concurrency: int, label: str = "engine") -> RunStats:
    """Closed loop: `concurrency` requests in flight until all of `reqs` finish (greedy, exact output lengths)."""
    engine.stats.peak_blocks_used = engine.alloc.used
    pre0 = engine.stats.preemptions
    pending = list(enumerate(reqs))
    live: dict[str, int] = {}
    done: dict[int, Any] = {}
    sync(engine.m.device)
    t0 = time.perf_counter()
    while pending or live:
        while pending and len(live) < concurrency:
            i, r = pending.pop(0)
            live[engine.add_request(r.prompt, SamplingParams(max_tokens=r.max_tokens)).id] = i
        engine.step()
        for req in engine.finished:
            if req.id in live:
                done[live.pop(req.id)] = req
        engine.finished.clear()
    wall = time.perf_counter() - t0
    got = [done[i] for i in range(len(reqs))]
    st = RunStats(label, concurrency, len(reqs), sum(len(r.output) for r in got), wall)
    st.ttft = [r.ttft for r in got]
    st.itl = [x for r in got for x in r.itl]
    st.preemptions = engine.stats.preemptions - pre0
    st.peak_kv_usage = engine.stats.peak_blocks_used / engine.alloc.usable
    st.outputs = [r.output for r in got]
    return st


class _StepClock:
    """A logits processor that only records when each generation step's logits are ready (after a sync)."""

    def __init__(self, device: Any) -> None:
        self.device, self.times = device, []

    def __call__(self, input_ids, scores):
        sync(self.device)
        self.times.append(time.perf_counter())
        return scores


def run_hf(model: Any, reqs: list[BenchRequest], batch: int, label: str, compiled: bool = False) -> RunStats:
    """Static batching with HF generate (eager, or cache_implementation='static', which transformers compiles)."""
    from transformers import LogitsProcessorList

    dev = next(model.parameters()).device
    st = RunStats(label, batch, len(reqs), 0, 0.0)
    sync(dev)
    t0 = time.perf_counter()
    for s in range(0, len(reqs), batch):
        group = reqs[s : s + batch]
        width = max(len(r.prompt) for r in group)
        ids = torch.zeros((len(group), width), dtype=torch.long)
        mask = torch.zeros_like(ids)
        for j, r in enumerate(group):
            ids[j, width - len(r.prompt) :] = torch.tensor(r.prompt)
            mask[j, width - len(r.prompt) :] = 1
        new = max(r.max_tokens for r in group)
        clock = _StepClock(dev)
        kw: dict[str, Any] = dict(max_new_tokens=new, min_new_tokens=new, do_sample=False, pad_token_id=0)
        if compiled:
            kw["cache_implementation"] = "static"
        start = time.perf_counter()
        with torch.no_grad():
            out = model.generate(
                input_ids=ids.to(dev), attention_mask=mask.to(dev), logits_processor=LogitsProcessorList([clock]), **kw
            )
        for j, r in enumerate(group):
            times = clock.times[: r.max_tokens]
            st.ttft.append(times[0] - t0)  # all requests arrive at t0: later batches wait for earlier ones
            st.itl += [b - a for a, b in itertools.pairwise(times)]
            st.output_tokens += r.max_tokens
            st.outputs.append(out[j, width : width + r.max_tokens].tolist())
        del start
    sync(dev)
    st.wall_s = time.perf_counter() - t0
    return st


def copy_bandwidth(device: Any, gib: float = 2.0, iters: int = 10) -> float:
    """Device-to-device copy bandwidth (bytes read + written per second) with CUDA events."""
    n = int(gib * 2**30) // 2
    x = torch.empty(n, dtype=torch.bfloat16, device=device)
    y = torch.empty_like(x)
    for _ in range(3):
        y.copy_(x)
    a, b = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    a.record()
    for _ in range(iters):
        y.copy_(x)
    b.record()
    torch.cuda.synchronize()
    sec = a.elapsed_time(b) / 1e3 / iters
    del x, y
    return 2 * n * 2 / sec


def decode_bandwidth(engine: LLMEngine, prompt_len: int, new_tokens: int, seed: int = 0) -> dict[str, float]:
    """Batch-1 decode: median step (the engine's inter-token gap) and bytes read per step (weights + KV so far)."""
    g = torch.Generator().manual_seed(seed)
    prompt = torch.randint(1, engine.m.vocab_size, (prompt_len,), generator=g).tolist()
    engine.generate([prompt], SamplingParams(max_tokens=8))  # warm-up
    engine.reset_prefix_cache()
    r = engine.generate([prompt], SamplingParams(max_tokens=new_tokens))[0]
    step = statistics.median(r.itl)
    per_pos = engine.bytes_per_block // engine.cfg.block_size
    kv = per_pos * (prompt_len + new_tokens / 2)  # mean context over the decode
    out = {"step_s": step, "weight_bytes": engine.m.weight_bytes(), "kv_bytes": kv}
    if engine._graphs:  # the graph replay alone (no scheduling / sampling on the host): the device-side step
        g1 = engine._graphs[1][0]
        engine._static["slots"].zero_()  # replays write their K/V to the reserved null block, nowhere else
        a, b = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        a.record()
        for _ in range(20):
            g1.replay()
        b.record()
        torch.cuda.synchronize()
        out["replay_s"] = a.elapsed_time(b) / 1e3 / 20
    engine.reset_prefix_cache()
    return out
