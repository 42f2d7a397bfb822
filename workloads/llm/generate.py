"""Prefill (one-shot or chunked) and a greedy / seeded-sampling decode loop with per-token timing.

Timings are wall-clock (perf_counter) around work that ends in a host sync: on CUDA torch.cuda.synchronize()
is called before every clock read, and each new token is read back to the host (`.item()`) anyway.
"""

from __future__ import annotations

import math
import statistics
import time
from dataclasses import dataclass, field

import torch
from torch.nn import functional as F  # noqa: N812 - the conventional name

from workloads.llm.kvcache import KVCache, NoCache
from workloads.llm.model import DecoderLM, bad


def sync(device: str | torch.device) -> None:
    """Wait for queued GPU work so the clock measures it (no-op on CPU)."""
    if str(device).startswith("cuda"):
        torch.cuda.synchronize()


def _as_tensor(tokens: list[int] | torch.Tensor, device: torch.device) -> torch.Tensor:
    t = tokens if isinstance(tokens, torch.Tensor) else torch.tensor(tokens, dtype=torch.long)
    return t.to(device).view(1, -1)


def _chunks(model: DecoderLM, tokens: list[int] | torch.Tensor, chunk: int | None, start: int):
    """(input slice [1, c], positions) per chunk of `chunk` tokens (one chunk when None), checked first."""
    if chunk is not None and (isinstance(chunk, bool) or not isinstance(chunk, int) or chunk < 1):
        raise bad("chunk", chunk, "integer >= 1 or null (one shot)")
    dev = next(model.parameters()).device
    x = _as_tensor(tokens, dev)
    step = chunk or x.shape[1]
    for i in range(0, x.shape[1], step):
        yield x[:, i : i + step], torch.arange(start + i, start + min(i + step, x.shape[1]), device=dev)


@torch.no_grad()
def forward_all(
    model: DecoderLM, tokens: list[int] | torch.Tensor, cache: KVCache, chunk: int | None = None, start: int = 0
) -> torch.Tensor:
    """Logits [T, vocab] of every position, the input pushed through `cache` in chunks of `chunk` tokens."""
    return torch.cat([model(x, pos, cache)[0] for x, pos in _chunks(model, tokens, chunk, start)])


@torch.no_grad()
def prefill(
    model: DecoderLM, tokens: list[int], cache: KVCache, chunk: int | None = None, start: int = 0
) -> torch.Tensor:
    """Logits [vocab] after the last prompt token; keeps only the last chunk's logits alive."""
    last = None
    for x, pos in _chunks(model, tokens, chunk, start):
        last = model(x, pos, cache)[0, -1]
    assert last is not None, "empty prompt"
    return last


@dataclass(frozen=True)
class Sampling:
    """temperature 0 = greedy; otherwise softmax(logits / temperature) over the top_k (0 = all) with a seed."""

    temperature: float = 0.0
    top_k: int = 0
    seed: int = 0

    def __post_init__(self) -> None:
        if not isinstance(self.temperature, int | float) or self.temperature < 0:
            raise bad("sampling.temperature", self.temperature, "number >= 0 (0 = greedy)")
        if isinstance(self.top_k, bool) or not isinstance(self.top_k, int) or self.top_k < 0:
            raise bad("sampling.top_k", self.top_k, "integer >= 0 (0 = no limit)")


@dataclass
class Generation:
    """Generated tokens and timings in seconds: ttft = prefill + first token, steps = every later token."""

    tokens: list[int]
    ttft_s: float
    step_s: list[float] = field(default_factory=list)

    @property
    def total_s(self) -> float:
        return self.ttft_s + sum(self.step_s)

    @property
    def per_token_ms(self) -> float:
        """Median decode latency of the tokens after the first (ms); robust to a preempted step on a shared host."""
        return 1e3 * statistics.median(self.step_s) if self.step_s else math.nan

    @property
    def tokens_per_s(self) -> float:
        """Decode throughput after the first token (tokens/s)."""
        return len(self.step_s) / sum(self.step_s) if self.step_s else math.nan


def _pick(logits: torch.Tensor, sampling: Sampling, gen: torch.Generator | None) -> int:
    if sampling.temperature == 0:
        return int(logits.argmax())
    logits = logits.float() / sampling.temperature
    if sampling.top_k:
        kth = torch.topk(logits, min(sampling.top_k, logits.numel())).values[-1]
        logits = logits.masked_fill(logits < kth, -math.inf)
    return int(torch.multinomial(F.softmax(logits, -1), 1, generator=gen))


@torch.no_grad()
def generate(
    model: DecoderLM,
    prompt: list[int],
    max_new: int,
    cache: KVCache,
    chunk: int | None = None,
    sampling: Sampling | None = None,
    start: int = 0,
) -> Generation:
    """Prefill `prompt` (from position `start`; earlier positions are already in the cache), then decode.

    With NoCache every step re-runs the whole sequence (the no-KV-cache baseline).
    """
    if isinstance(max_new, bool) or not isinstance(max_new, int) or max_new < 1:
        raise bad("max_new", max_new, "integer >= 1")
    sampling = sampling or Sampling()
    dev = next(model.parameters()).device
    gen = torch.Generator(device=dev).manual_seed(sampling.seed) if sampling.temperature else None
    recompute = isinstance(cache, NoCache)
    seq = list(prompt)
    sync(dev)
    t0 = time.perf_counter()
    logits = prefill(model, seq, cache, chunk, start)
    out = [_pick(logits, sampling, gen)]
    sync(dev)
    ttft = time.perf_counter() - t0
    steps: list[float] = []
    for _ in range(max_new - 1):
        t0 = time.perf_counter()
        if recompute:
            seq.append(out[-1])
            logits = prefill(model, seq, cache, None, start)
        else:
            pos = torch.tensor([start + len(seq) + len(out) - 1], device=dev)
            logits = model(torch.tensor([[out[-1]]], device=dev), pos, cache)[0, -1]
        out.append(_pick(logits, sampling, gen))
        sync(dev)
        steps.append(time.perf_counter() - t0)
    return Generation(out, ttft, steps)


def nll_per_token(logits: torch.Tensor, targets: list[int] | torch.Tensor) -> torch.Tensor:
    """Negative log-likelihood (nats) of each target under logits [T, vocab]."""
    tgt = torch.as_tensor(targets, device=logits.device).view(-1)
    return F.cross_entropy(logits.float(), tgt, reduction="none")
