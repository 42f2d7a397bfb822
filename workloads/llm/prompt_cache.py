"""Prompt caching (d81): an exact-match response cache and prefix KV reuse, served over a request stream.

Response cache: key = sha256 of (model id, prompt tokens, sampling params, max_new), LRU over `capacity` entries;
a hit returns the stored tokens without running the model. Prefix KV cache: `paged.PrefixStore` attaches stored
blocks of a shared prefix and only the suffix is prefilled. Hit rates are counted while serving, not assumed.
"""

from __future__ import annotations

import hashlib
import json
import random
import time
from collections import OrderedDict
from dataclasses import dataclass

from workloads.llm.generate import Sampling, generate, sync
from workloads.llm.model import DecoderLM, bad
from workloads.llm.paged import BlockPool, PagedCache, PrefixStore


class ResponseCache:
    """Exact-match LRU cache of generated tokens."""

    def __init__(self, capacity: int) -> None:
        if isinstance(capacity, bool) or not isinstance(capacity, int) or capacity < 1:
            raise bad("capacity", capacity, "integer >= 1")
        self.capacity = capacity
        self.entries: OrderedDict[str, list[int]] = OrderedDict()
        self.hits = self.misses = self.evictions = 0

    @staticmethod
    def key(model_id: str, prompt: list[int], sampling: Sampling, max_new: int) -> str:
        blob = json.dumps([model_id, prompt, sampling.__dict__, max_new], separators=(",", ":"))
        return hashlib.sha256(blob.encode()).hexdigest()

    def get(self, key: str) -> list[int] | None:
        out = self.entries.get(key)
        if out is None:
            self.misses += 1
            return None
        self.hits += 1
        self.entries.move_to_end(key)
        return list(out)

    def put(self, key: str, tokens: list[int]) -> None:
        self.entries[key] = list(tokens)
        self.entries.move_to_end(key)
        while len(self.entries) > self.capacity:
            self.entries.popitem(last=False)
            self.evictions += 1

    @property
    def hit_rate(self) -> float:
        n = self.hits + self.misses
        return self.hits / n if n else 0.0


@dataclass(frozen=True)
class WorkloadSpec:
    """A request stream with controlled repetition (fractions 0..1, lengths in tokens)."""

    requests: int = 24
    repeat: float = 0.5  # chance a request repeats an earlier prompt exactly (response-cache hit candidate)
    shared_prefix: float = 0.8  # chance a new prompt starts with the shared system prompt (prefix-cache candidate)
    prefix_len: int = 192
    suffix_len: int = 64
    seed: int = 0

    def __post_init__(self) -> None:
        for f in ("repeat", "shared_prefix"):
            v = getattr(self, f)
            if isinstance(v, bool) or not isinstance(v, int | float) or not 0 <= v <= 1:
                raise bad(f"workload.{f}", v, "number 0..1")
        for f, lo in (("requests", 1), ("prefix_len", 0), ("suffix_len", 1), ("seed", 0)):
            v = getattr(self, f)
            if isinstance(v, bool) or not isinstance(v, int) or v < lo:
                raise bad(f"workload.{f}", v, f"integer >= {lo}")


def make_workload(spec: WorkloadSpec, text: list[int]) -> list[list[int]]:
    """Prompts cut from `text`: a fixed system prefix + distinct user parts, with exact repeats mixed in."""
    rng = random.Random(spec.seed)
    need = spec.prefix_len + spec.suffix_len + 1
    if len(text) < 2 * need:
        raise bad("text", f"{len(text)} tokens", f">= {2 * need} tokens for these lengths")
    system = text[: spec.prefix_len]
    out: list[list[int]] = []
    for _ in range(spec.requests):
        if out and rng.random() < spec.repeat:
            out.append(list(rng.choice(out)))
            continue
        s = rng.randrange(spec.prefix_len, len(text) - need)
        if rng.random() < spec.shared_prefix:
            out.append(system + text[s : s + spec.suffix_len])
        else:
            out.append(text[s : s + spec.prefix_len + spec.suffix_len])
    return out


@dataclass
class Served:
    """One request: output tokens, latency and TTFT (s), how it was served, prefix tokens reused."""

    tokens: list[int]
    latency_s: float
    ttft_s: float
    kind: str  # response-hit | prefix-hit | miss
    reused_tokens: int


class Server:
    """Serves requests one at a time on a paged cache from `pool`, with the caches given (None = without)."""

    def __init__(
        self,
        model: DecoderLM,
        max_new: int,
        pool: BlockPool,
        responses: ResponseCache | None = None,
        prefixes: PrefixStore | None = None,
        model_id: str = "model",
        sampling: Sampling | None = None,
    ) -> None:
        self.model, self.max_new, self.pool = model, max_new, pool
        self.responses, self.prefixes, self.model_id = responses, prefixes, model_id
        self.sampling = sampling or Sampling()
        self.device = next(model.parameters()).device

    def handle(self, prompt: list[int]) -> Served:
        """One request: response-cache lookup, else prefix match + prefill of the rest + decode."""
        sync(self.device)
        t0 = time.perf_counter()
        key = ResponseCache.key(self.model_id, prompt, self.sampling, self.max_new) if self.responses else ""
        cached = self.responses.get(key) if self.responses else None
        if cached is not None:
            dt = time.perf_counter() - t0
            return Served(cached, dt, dt, "response-hit", len(prompt))
        blocks = self.prefixes.match(prompt) if self.prefixes else []
        cache = PagedCache(self.pool, blocks)
        start = cache.length
        gen = generate(self.model, prompt[start:], self.max_new, cache, sampling=self.sampling, start=start)
        if self.prefixes:
            self.prefixes.insert(prompt, cache.table)
        cache.release()
        if self.responses:
            self.responses.put(key, gen.tokens)
        dt = time.perf_counter() - t0
        # TTFT: arrival to first token, i.e. the lookups before prefill plus the generation's own TTFT
        return Served(gen.tokens, dt, dt - sum(gen.step_s), "prefix-hit" if start else "miss", start)


def serve(
    model: DecoderLM,
    prompts: list[list[int]],
    max_new: int,
    pool: BlockPool,
    responses: ResponseCache | None = None,
    prefixes: PrefixStore | None = None,
    model_id: str = "model",
    sampling: Sampling | None = None,
) -> list[Served]:
    """Serve the prompts one after another; every request runs on a paged cache from `pool`."""
    server = Server(model, max_new, pool, responses, prefixes, model_id, sampling)
    return [server.handle(p) for p in prompts]
