"""The H200 time estimate's work count (tools/gpucall/llm_estimate.py): the requests each d81.e4 configuration runs
through the model, counted without a model, agree with the stream itself (exact repeats never reach the model behind
a response cache; shared prefixes are not prefilled again behind a prefix store)."""

from __future__ import annotations

from ailab.contract.params import validate
from tools.gpucall.llm_estimate import d81_work
from workloads.llm import charlm
from workloads.llm.experiments.prompt_cache import WithWithoutParams, _spec
from workloads.llm.prompt_cache import make_workload

D81 = {"requests": 12, "shared_prefix": 0.8, "prefix_len": 64, "suffix_len": 16, "new_tokens": 4, "block_size": 16,
       "response_capacity": 64, "prefix_cache_requests": 8, "repeats": [0.0, 0.6]}  # fmt: skip


def test_model_runs_and_prefilled_tokens_follow_the_stream() -> None:
    p = validate(WithWithoutParams, D81)
    work = d81_work(p)
    for r, row in work.items():
        prompts = make_workload(_spec(p, r), charlm.corpus()[1])
        repeats = sum(q in prompts[:i] for i, q in enumerate(prompts))
        total = sum(map(len, prompts))
        assert row["no cache"] == (p.requests, total)
        assert row["response cache"][0] == p.requests - repeats
        assert row["response + prefix KV"][0] == p.requests - repeats
        runs, prefilled = row["prefix KV cache"]
        assert runs == p.requests and prefilled < total  # the shared system prompt is reused
        assert row["response + prefix KV"][1] <= prefilled
    assert work[0.0]["response cache"][0] == p.requests  # no repeats at rate 0
    assert work[0.6]["response cache"][0] < p.requests
