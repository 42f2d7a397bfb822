"""On a GPU host: the LLM caches give the no-cache logits on CUDA, byte accounting matches the allocator, and the
d79.e4 / d82.e4 memory runners produce their tables (tiny configs, seconds)."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from ailab import host

pytestmark = [pytest.mark.gpu, pytest.mark.skipif(not host.gpus(), reason="no NVIDIA GPU on this host")]


@pytest.fixture(scope="module")
def torch():
    torch = pytest.importorskip("torch")
    if not torch.cuda.is_available():
        pytest.skip("torch has no CUDA here")
    return torch


def test_caches_match_recomputation_on_cuda(torch) -> None:
    from workloads.llm.generate import forward_all, generate
    from workloads.llm.kvcache import FullCache, NoCache, SlidingCache
    from workloads.llm.model import ModelConfig, build
    from workloads.llm.paged import BlockPool, PagedCache

    cfg = ModelConfig(vocab_size=256, d_model=128, n_layers=2, n_heads=4)
    model = build(cfg, "cuda")
    tokens = list(range(1, 200))
    ref = forward_all(model, tokens, NoCache())
    for cache, chunk in [
        (FullCache(cfg, capacity=256, device="cuda"), 1),
        (FullCache(cfg, capacity=256, device="cuda"), 64),
        (SlidingCache(cfg, 256, device="cuda"), 7),
        (PagedCache(BlockPool(cfg, 16, 16, "cuda")), 33),
    ]:
        torch.testing.assert_close(forward_all(model, tokens, cache, chunk=chunk), ref, atol=1e-4, rtol=1e-4)
    bf = build(ModelConfig(vocab_size=256, d_model=128, n_layers=2, n_heads=4, dtype="bfloat16"), "cuda")
    g = generate(bf, tokens[:50], 8, FullCache(bf.cfg, capacity=64, device="cuda"))
    assert len(g.tokens) == 8 and g.ttft_s > 0


def test_full_cache_allocation_equals_the_exact_byte_count(torch) -> None:
    from workloads.llm.kvcache import FullCache, kv_bytes
    from workloads.llm.model import ModelConfig

    cfg = ModelConfig(d_model=256, n_layers=4, n_heads=8, dtype="bfloat16")
    torch.cuda.synchronize()
    before = torch.cuda.memory_allocated()
    cache = FullCache(cfg, capacity=1024, device="cuda")
    assert torch.cuda.memory_allocated() - before == kv_bytes(cfg, 1024)  # 1024 positions: a multiple of 512 B
    del cache


@pytest.mark.parametrize(
    ("runner", "params"),
    [
        (
            "workloads.llm.experiments.kv_cache:memory_curve",
            {"lengths": [512, 1024], "windows": [None, 256], "chunk": 256, "new_tokens": 4},
        ),
        ("workloads.llm.experiments.long_context:memory", {"lengths": [512, 1024], "chunk": 256, "window": 256}),
    ],
)
def test_memory_runners_fill_their_tables(torch, tmp_path: Path, runner: str, params: dict) -> None:
    from ailab.contract import Context
    from ailab.contract.params import validate
    from ailab.curriculum.loader import runner_params_model
    from ailab.runner import load_runner

    p = {"cuda_model": {"d_model": 256, "n_layers": 2, "n_heads": 4, "dtype": "bfloat16"}, **params}
    ctx = Context(experiment_id="t", device="cuda", quick=True, workdir=tmp_path)
    out = load_runner(runner)(ctx, validate(runner_params_model(runner), p))
    rows = out.tables[0].rows
    assert len(rows) >= 4
    for r in rows:
        kv_exact, resident, peak = r[2], r[3], r[4]
        assert math.isfinite(resident) and peak >= resident >= 0 and kv_exact > 0
