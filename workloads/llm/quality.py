"""Quality of a KV strategy against the full-cache baseline, on the trained char model's held-out text.

Perplexity = exp(mean NLL in nats/char); agreement = fraction of positions where the strategy's argmax next
token equals the full cache's; greedy match = generated tokens equal to the full-cache continuation.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from workloads.llm import charlm
from workloads.llm.generate import forward_all, generate, nll_per_token
from workloads.llm.kvcache import make_cache
from workloads.llm.model import DecoderLM


def eval_sequences(n: int, length: int, offset: int = 0) -> list[list[int]]:
    """n held-out sequences of `length` + 1 characters, evenly spaced through the held-out text."""
    held = charlm.corpus()[1]
    step = max(1, (len(held) - length - 1 - offset) // n)
    return [held[offset + i * step : offset + i * step + length + 1] for i in range(n)]


@dataclass
class Quality:
    nll: torch.Tensor  # [n_seq, length] nats/char
    argmax: torch.Tensor  # [n_seq, length]

    def ppl(self, lo: int = 0, hi: int | None = None) -> float:
        return math.exp(float(self.nll[:, lo:hi].mean()))

    def agreement(self, ref: Quality, lo: int = 0, hi: int | None = None) -> float:
        return float((self.argmax[:, lo:hi] == ref.argmax[:, lo:hi]).float().mean())


@torch.no_grad()
def teacher_forced(
    model: DecoderLM, seqs: list[list[int]], kind: str, window: int | None = None, sinks: int = 0, chunk: int | None = 1
) -> Quality:
    """NLL and argmax at every position, the text fed through a cache of `kind` in chunks of `chunk` tokens."""
    dev = str(next(model.parameters()).device)
    nll, arg = [], []
    for s in seqs:
        cache = make_cache(kind, model.cfg, len(s), dev, window=window, sinks=sinks)
        logits = forward_all(model, s[:-1], cache, chunk=chunk)
        nll.append(nll_per_token(logits, s[1:]).cpu())
        arg.append(logits.argmax(-1).cpu())
    return Quality(torch.stack(nll), torch.stack(arg))


def greedy_match(
    model: DecoderLM,
    prompts: list[list[int]],
    new: int,
    ref: list[list[int]],
    kind: str,
    window: int | None,
    sinks: int,
) -> tuple[float, float]:
    """(fraction of generated tokens equal to the reference, mean tokens before the first difference)."""
    dev = str(next(model.parameters()).device)
    same, prefix = 0, 0
    for p, r in zip(prompts, ref, strict=True):
        g = generate(model, p, new, make_cache(kind, model.cfg, len(p) + new, dev, window=window, sinks=sinks)).tokens
        same += sum(a == b for a, b in zip(g, r, strict=True))
        prefix += next((i for i, (a, b) in enumerate(zip(g, r, strict=True)) if a != b), new)
    return same / (new * len(prompts)), prefix / len(prompts)
