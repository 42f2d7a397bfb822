"""The d81 divergence table: at a request whose cached output differs from the uncached one, the top-2 logit gap of
that step is computed by two code paths and compared with how far they differ (CPU, fp32, tiny random model)."""

from __future__ import annotations

import torch

from ailab.contract import Context
from workloads.llm.experiments.prompt_cache import _divergences
from workloads.llm.generate import generate
from workloads.llm.kvcache import FullCache
from workloads.llm.model import ModelConfig, build
from workloads.llm.prompt_cache import Served


def test_divergence_rows_name_the_first_differing_token(tmp_path):
    torch.set_num_threads(1)
    cfg = ModelConfig(vocab_size=64, d_model=32, n_layers=2, n_heads=2)
    model = build(cfg)
    prompts = [[1, 2, 3, 4, 5], [7, 8, 9]]
    ref = [Served(generate(model, p, 6, FullCache(cfg, capacity=12)).tokens, 0.0, 0.0, "miss", 0) for p in prompts]
    bent = list(ref[1].tokens)
    bent[3] = (bent[3] + 1) % 64  # a planted divergence at index 3 of request 1
    records = {"no cache": ref, "prefix KV cache": [ref[0], Served(bent, 0.0, 0.0, "prefix-hit", 0)]}
    ctx = Context(experiment_id="d81.e2", device="cpu", quick=True, workdir=tmp_path)
    t = _divergences(model, cfg, ctx, prompts, records, "no cache")
    assert t is not None and len(t.rows) == 1
    conf, req, kind, k, gap_un, gap_full, diff, tie = t.rows[0]
    assert (conf, req, kind, k) == ("prefix KV cache", 1, "prefix-hit", 3)
    assert gap_un > 0 and abs(gap_un - gap_full) <= diff + 1e-6
    assert diff < 1e-3 and tie == "no"  # fp32: the two paths agree far below the gap
    assert _divergences(model, cfg, ctx, prompts, {"no cache": ref, "x": ref}, "no cache") is None
