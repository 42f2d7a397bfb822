"""The long run's request stream (workloads/llm/serving_bench.py): made lazily, it must hold the same requests, in
the same order, as the list that was made up front before (the old construction is kept here as the reference)."""

from __future__ import annotations

import itertools
import math

import torch

from workloads.llm.serving_bench import BenchRequest, sharegpt_like, sharegpt_stream

MIX = dict(vocab=1000, prompt_median=40, prompt_sigma=0.9, prompt_range=(8, 256), output_median=30,
           output_sigma=0.7, output_range=(8, 64))  # fmt: skip


def _made_up_front(n: int, seed: int, vocab: int, prompt_median: int, prompt_sigma: float, prompt_range, output_median,
                   output_sigma, output_range) -> list[BenchRequest]:  # fmt: skip
    g = torch.Generator().manual_seed(seed)

    def lengths(median: int, sigma: float, lo: int, hi: int) -> list[int]:
        z = torch.randn(n, generator=g, dtype=torch.float64)
        return [min(hi, max(lo, round(median * math.exp(sigma * float(x))))) for x in z]

    pl = lengths(prompt_median, prompt_sigma, *prompt_range)
    ol = lengths(output_median, output_sigma, *output_range)
    return [BenchRequest(torch.randint(1, vocab, (p,), generator=g).tolist(), o) for p, o in zip(pl, ol, strict=True)]


def test_the_stream_is_the_list_made_up_front() -> None:
    ref = _made_up_front(300, 3, **MIX)
    assert list(sharegpt_stream(300, 3, **MIX)) == ref
    assert sharegpt_like(300, 3, **MIX) == ref
    assert list(itertools.islice(sharegpt_stream(300, 3, **MIX), 7)) == ref[:7]  # a prefix needs only its requests


def test_an_open_ended_stream_makes_only_what_is_taken() -> None:
    first = list(itertools.islice(sharegpt_stream(10**6, 0, **MIX), 3))  # 10**6 prompts made up front: gigabytes
    assert len(first) == 3 and all(8 <= len(r.prompt) <= 256 and 8 <= r.max_tokens <= 64 for r in first)
