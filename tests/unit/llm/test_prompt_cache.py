"""Prompt caching: cached outputs equal uncached ones, hit rates are counted from the stream, LRU and errors."""

from __future__ import annotations

import pytest
import torch

from workloads.llm.generate import Sampling, forward_all, generate
from workloads.llm.kvcache import NoCache
from workloads.llm.model import ConfigError, ModelConfig, build
from workloads.llm.paged import BlockPool, PagedCache, PoolExhaustedError, PrefixStore
from workloads.llm.prompt_cache import ResponseCache, WorkloadSpec, make_workload, serve

CFG = ModelConfig(vocab_size=64, d_model=32, n_layers=2, n_heads=4, seed=5)
TEXT = torch.randint(0, 64, (2000,), generator=torch.Generator().manual_seed(1)).tolist()


@pytest.fixture(scope="module")
def model():
    return build(CFG)


def test_prefix_blocks_reused_give_the_logits_of_a_full_recomputation(model) -> None:
    pool = BlockPool(CFG, num_blocks=32, block_size=4)
    store = PrefixStore(pool, capacity_blocks=16)
    shared = TEXT[:13]
    first, second = shared + TEXT[100:105], shared + TEXT[200:203]
    c1 = PagedCache(pool, store.match(first))
    forward_all(model, first, c1)
    store.insert(first, c1.table)
    c1.release()
    blocks = store.match(second)
    assert len(blocks) == 3  # 13 shared tokens = 3 full blocks of 4
    c2 = PagedCache(pool, blocks)
    got = forward_all(model, second[12:], c2, start=12)
    want = forward_all(model, second, NoCache())[12:]
    torch.testing.assert_close(got, want, atol=1e-5, rtol=1e-5)
    assert c2.stats.served > 0 and store.stats.hit_tokens == 12 and store.stats.hit_requests == 1


def test_a_whole_prompt_match_still_leaves_one_token_to_prefill() -> None:
    pool = BlockPool(CFG, num_blocks=8, block_size=4)
    store = PrefixStore(pool, capacity_blocks=8)
    prompt = TEXT[:8]
    c = PagedCache(pool)
    c.table = [pool.alloc(), pool.alloc()]
    store.insert(prompt, c.table)
    assert len(store.match(prompt)) == 1  # (8 - 1) // 4: the second block would leave nothing to compute


def test_cached_serving_equals_uncached_serving_and_hit_rates_are_counted(model) -> None:
    spec = WorkloadSpec(requests=10, repeat=0.4, shared_prefix=0.8, prefix_len=12, suffix_len=6, seed=2)
    prompts = make_workload(spec, TEXT)
    repeats = sum(p in prompts[:i] for i, p in enumerate(prompts))
    plain = serve(model, prompts, 5, BlockPool(CFG, 64, 4))
    pool = BlockPool(CFG, 64, 4)
    responses, prefixes = ResponseCache(capacity=16), PrefixStore(pool, capacity_blocks=32)
    cached = serve(model, prompts, 5, pool, responses, prefixes)
    assert [s.tokens for s in cached] == [s.tokens for s in plain]
    assert responses.hits == repeats == sum(s.kind == "response-hit" for s in cached)
    assert responses.hit_rate == repeats / len(prompts)
    assert prefixes.stats.requests == len(prompts) - repeats
    assert any(s.kind == "prefix-hit" for s in cached)


def test_seeded_sampling_is_reproducible_and_part_of_the_cache_key(model) -> None:
    s1, s2 = Sampling(temperature=1.0, top_k=8, seed=1), Sampling(temperature=1.0, top_k=8, seed=2)
    a = generate(model, TEXT[:6], 12, NoCache(), sampling=s1).tokens
    assert a == generate(model, TEXT[:6], 12, NoCache(), sampling=s1).tokens
    assert ResponseCache.key("m", TEXT[:6], s1, 12) != ResponseCache.key("m", TEXT[:6], s2, 12)
    assert ResponseCache.key("m", TEXT[:6], s1, 12) != ResponseCache.key("other", TEXT[:6], s1, 12)


def test_response_cache_evicts_the_least_recently_used() -> None:
    rc = ResponseCache(capacity=2)
    rc.put("a", [1])
    rc.put("b", [2])
    assert rc.get("a") == [1]
    rc.put("c", [3])
    assert rc.get("b") is None and rc.get("a") == [1] and rc.evictions == 1


def test_prefix_store_frees_blocks_under_pool_pressure() -> None:
    pool = BlockPool(CFG, num_blocks=4, block_size=2)
    store = PrefixStore(pool, capacity_blocks=4)
    c = PagedCache(pool)
    c.table = [pool.alloc(), pool.alloc(), pool.alloc()]
    store.insert(TEXT[:6], c.table)
    c.release()  # the store alone holds the 3 blocks now
    assert pool.used == 3
    taken = [pool.alloc(), pool.alloc()]  # one free, one evicted from the store
    assert len(taken) == 2 and len(store.entries) == 2
    pool.alloc(), pool.alloc()
    with pytest.raises(PoolExhaustedError, match="all 4 blocks of 2 positions are in use"):
        pool.alloc()


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"repeat": 1.5}, "workload.repeat 1.5: allowed number 0..1"),
        ({"shared_prefix": -0.1}, "workload.shared_prefix -0.1: allowed number 0..1"),
        ({"requests": 0}, "workload.requests 0: allowed integer >= 1"),
        ({"suffix_len": 0}, "workload.suffix_len 0: allowed integer >= 1"),
    ],
)
def test_bad_workload_is_rejected_with_field_value_and_allowed(kwargs, message) -> None:
    with pytest.raises(ConfigError, match=message):
        WorkloadSpec(**kwargs)


def test_bad_cache_sizes_are_rejected() -> None:
    with pytest.raises(ConfigError, match="capacity 0: allowed integer >= 1"):
        ResponseCache(0)
    with pytest.raises(ConfigError, match=r"sampling\.temperature -1: allowed number >= 0"):
        Sampling(temperature=-1)
