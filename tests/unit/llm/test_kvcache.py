"""Every KV cache strategy gives the logits of recomputing the whole prefix without a cache (tiny random model)."""

from __future__ import annotations

import re

import pytest
import torch

from workloads.llm.generate import forward_all, generate
from workloads.llm.kvcache import FullCache, NoCache, SlidingCache, kv_bytes, make_cache
from workloads.llm.model import ConfigError, ModelConfig, build
from workloads.llm.paged import BlockPool, PagedCache

CFG = ModelConfig(vocab_size=64, d_model=32, n_layers=2, n_heads=4, seed=3)
TOL = {"atol": 1e-5, "rtol": 1e-5}


@pytest.fixture(scope="module")
def model():
    return build(CFG)


@pytest.fixture(scope="module")
def tokens() -> list[int]:
    return torch.randint(0, CFG.vocab_size, (40,), generator=torch.Generator().manual_seed(0)).tolist()


@pytest.fixture(scope="module")
def reference(model, tokens) -> torch.Tensor:
    return forward_all(model, tokens, NoCache())


class WindowedNoCache(NoCache):
    """Reference: whole sequence at once, no cache, attention restricted by an explicit window mask."""

    def __init__(self, window: int, sinks: int = 0) -> None:
        super().__init__()
        self.window, self.sinks = window, sinks

    def update(self, layer, k, v, pos):
        keys, values, kpos, _ = super().update(layer, k, v, pos)
        return keys, values, kpos, False  # not plain: the model builds the window mask


@pytest.mark.parametrize("chunk", [1, 7, None])
def test_full_cache_matches_recomputation(model, tokens, reference, chunk) -> None:
    logits = forward_all(model, tokens, FullCache(CFG, capacity=8), chunk=chunk)  # capacity 8 also exercises growth
    torch.testing.assert_close(logits, reference, **TOL)


@pytest.mark.parametrize("chunk", [1, 5])
def test_sliding_window_not_shorter_than_the_sequence_equals_full(model, tokens, reference, chunk) -> None:
    logits = forward_all(model, tokens, SlidingCache(CFG, window=len(tokens)), chunk=chunk)
    torch.testing.assert_close(logits, reference, **TOL)


@pytest.mark.parametrize(("window", "sinks", "chunk"), [(8, 0, 1), (8, 0, 3), (8, 0, 20), (6, 2, 1), (6, 2, 9)])
def test_sliding_window_equals_a_window_masked_reference(model, tokens, reference, window, sinks, chunk) -> None:
    ref = forward_all(model, tokens, WindowedNoCache(window, sinks))
    logits = forward_all(model, tokens, SlidingCache(CFG, window, sinks), chunk=chunk)
    torch.testing.assert_close(logits, ref, **TOL)
    # the window really changes the output past position W (otherwise the test above proves nothing)
    assert not torch.allclose(ref[window + sinks + 1 :], reference[window + sinks + 1 :], atol=1e-3)
    torch.testing.assert_close(ref[:window], reference[:window], **TOL)


def test_attention_mask_matches_a_hand_written_window() -> None:
    from workloads.llm.model import attention_mask

    q, k = torch.arange(3, 10), torch.arange(0, 10)
    m = attention_mask(q, k, window=4, sinks=1)
    want = [[kk <= qq and (kk > qq - 4 or kk < 1) for kk in range(10)] for qq in range(3, 10)]
    assert m.tolist() == want


@pytest.mark.parametrize(("block_size", "chunk"), [(4, 1), (4, 6), (16, None)])
def test_paged_cache_equals_full_cache(model, tokens, reference, block_size, chunk) -> None:
    pool = BlockPool(CFG, num_blocks=16, block_size=block_size)
    cache = PagedCache(pool)
    logits = forward_all(model, tokens, cache, chunk=chunk)
    torch.testing.assert_close(logits, reference, **TOL)
    assert cache.blocks_held() == -(-len(tokens) // block_size) == pool.used
    cache.release()
    assert pool.used == 0


def test_chunked_prefill_equals_one_shot(model, tokens) -> None:
    one = forward_all(model, tokens, FullCache(CFG, capacity=64))
    for chunk in (3, 16, 39):
        torch.testing.assert_close(forward_all(model, tokens, FullCache(CFG, capacity=64), chunk=chunk), one, **TOL)


def test_greedy_generation_is_the_same_with_every_cache(model, tokens) -> None:
    prompt, new = tokens[:12], 10
    want = generate(model, prompt, new, NoCache()).tokens
    for kind in ("full", "sliding", "paged"):
        pool = BlockPool(CFG, 8, 4)
        cache = make_cache(kind, CFG, len(prompt) + new, window=64, pool=pool)
        assert generate(model, prompt, new, cache, chunk=5).tokens == want, kind


@pytest.mark.parametrize("dtype", ["float32", "bfloat16", "float16"])
def test_byte_accounting_is_exact(dtype) -> None:
    cfg = ModelConfig(vocab_size=64, d_model=32, n_layers=3, n_heads=4, dtype=dtype)
    size = {"float32": 4, "bfloat16": 2, "float16": 2}[dtype]
    assert kv_bytes(cfg, 100) == 3 * 2 * 4 * 8 * 100 * size
    full = FullCache(cfg, capacity=100)
    assert full.buf.numel() * full.buf.element_size() == kv_bytes(cfg, 100)
    ring = SlidingCache(cfg, window=10, sinks=2)
    assert (ring.k.numel() + ring.v.numel()) * ring.k.element_size() == kv_bytes(cfg, 12)
    pool = BlockPool(cfg, num_blocks=5, block_size=4)
    assert (pool.k.numel() + pool.v.numel()) * pool.k.element_size() == kv_bytes(cfg, 20)


def test_hit_accounting_counts_served_and_computed_positions(model, tokens) -> None:
    full = FullCache(CFG, capacity=64)
    forward_all(model, tokens[:10], full)  # 10 computed, nothing served
    forward_all(model, tokens[10:13], full, start=10)  # 3 computed, 10 served
    assert (full.stats.served, full.stats.computed) == (10, 13)
    ring = SlidingCache(CFG, window=4)
    forward_all(model, tokens[:10], ring, chunk=1)  # steps serve 0,1,2,3,4,4,4,... positions
    assert ring.stats.served == sum(min(i, 4) for i in range(10))
    none = NoCache()
    forward_all(model, tokens[:10], none)
    assert none.stats.hit_rate == 0.0


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"d_model": 30, "n_heads": 4}, "model.d_model 30: allowed a multiple of model.n_heads (4)"),
        ({"n_layers": 0}, "model.n_layers 0: allowed integer >= 1"),
        ({"dtype": "int8"}, "model.dtype 'int8': allowed float32, bfloat16, float16"),
        ({"d_model": 12, "n_heads": 4}, "model.n_heads 4: allowed a value giving an even head_dim"),
    ],
)
def test_bad_model_config_names_field_value_and_allowed(fields, message) -> None:
    with pytest.raises(ConfigError, match=re.escape(message)):
        ModelConfig(**fields)


def test_unknown_model_field_is_rejected() -> None:
    with pytest.raises(ConfigError, match=r"model\.layers 3: allowed no such field; fields are .*n_layers"):
        ModelConfig.from_dict({"layers": 3})


def test_bad_cache_settings_are_rejected() -> None:
    with pytest.raises(ConfigError, match="cache 'ring': allowed none, full, sliding, paged"):
        make_cache("ring", CFG, 10)
    with pytest.raises(ConfigError, match="window 0: allowed integer >= 1"):
        SlidingCache(CFG, window=0)
    with pytest.raises(ConfigError, match="block_size 0: allowed integer >= 1"):
        BlockPool(CFG, num_blocks=4, block_size=0)
    with pytest.raises(ConfigError, match="chunk 0: allowed integer >= 1 or null"):
        forward_all(build(CFG), [1, 2, 3], NoCache(), chunk=0)
