"""DecoderLM's random weights: built without torch's default init (the speed-up of a large build), they must stay
the same draw as before, so results of earlier runs and of the CPU and GPU stay about the same weights."""

from __future__ import annotations

import math

import torch
from torch import nn

from workloads.llm.model import Block, DecoderLM, ModelConfig


class _DefaultInitThenDraw(nn.Module):
    """The construction DecoderLM used before: modules with torch's default init, then every matrix drawn again."""

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        gen = torch.Generator().manual_seed(cfg.seed)
        self.embed = nn.Embedding(cfg.vocab_size, cfg.d_model)
        self.blocks = nn.ModuleList(Block(cfg, i) for i in range(cfg.n_layers))
        self.norm = nn.RMSNorm(cfg.d_model)
        with torch.no_grad():
            for name, p in self.named_parameters():
                if p.dim() == 2:
                    std = 0.02 / math.sqrt(2 * cfg.n_layers) if name.endswith(("out.weight", "mlp.2.weight")) else 0.02
                    p.copy_(torch.randn(p.shape, generator=gen) * std)


def test_weights_are_the_same_draw_as_with_the_default_init() -> None:
    cfg = ModelConfig(vocab_size=300, d_model=64, n_layers=3, n_heads=4, d_ff=96, seed=7)
    new, old = DecoderLM(cfg).state_dict(), _DefaultInitThenDraw(cfg).state_dict()
    assert list(new) == list(old)
    for k in new:
        assert new[k].device.type == "cpu" and torch.equal(new[k], old[k]), k
    assert torch.equal(new["norm.weight"], torch.ones(64))  # the RMSNorm gains, not left uninitialised


def test_the_global_rng_is_not_consumed() -> None:
    torch.manual_seed(0)
    before = torch.rand(3)
    torch.manual_seed(0)
    DecoderLM(ModelConfig())
    assert torch.equal(torch.rand(3), before)
