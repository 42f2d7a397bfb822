"""A small decoder-only transformer in plain torch: RoPE, pre-norm blocks, tied LM head, swappable KV cache.

Weights are random (seeded) unless trained by `workloads.llm.charlm`; nothing is downloaded. Attention gets an
explicit cache object (`workloads.llm.kvcache`), so the same model runs with no cache, a full cache, a sliding
window or a paged block pool.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields
from typing import TYPE_CHECKING, Any

import torch
from torch import nn
from torch.nn import functional as F  # noqa: N812 - the conventional name

if TYPE_CHECKING:
    from workloads.llm.kvcache import KVCache

DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


class ConfigError(ValueError):
    """A bad model/cache/experiment setting; the message names the field, the value and what is allowed."""


def bad(field: str, value: Any, allowed: str) -> ConfigError:
    return ConfigError(f"{field} {value!r}: allowed {allowed}")


@dataclass(frozen=True)
class ModelConfig:
    """Shape and numerics of the model; `validate()` runs on construction."""

    vocab_size: int = 128
    d_model: int = 128
    n_layers: int = 2
    n_heads: int = 4
    d_ff: int = 0  # 0 -> 4 * d_model
    rope_base: float = 10000.0
    dtype: str = "float32"
    seed: int = 0

    def __post_init__(self) -> None:
        for f in ("vocab_size", "d_model", "n_layers", "n_heads", "d_ff", "seed"):
            v = getattr(self, f)
            lo = 0 if f in ("d_ff", "seed") else 1
            if isinstance(v, bool) or not isinstance(v, int) or v < lo:
                raise bad(f"model.{f}", v, f"integer >= {lo}")
        if self.d_model % self.n_heads:
            raise bad("model.d_model", self.d_model, f"a multiple of model.n_heads ({self.n_heads})")
        if (self.d_model // self.n_heads) % 2:
            raise bad("model.n_heads", self.n_heads, "a value giving an even head_dim (RoPE rotates pairs)")
        if self.dtype not in DTYPES:
            raise bad("model.dtype", self.dtype, ", ".join(DTYPES))
        if not isinstance(self.rope_base, int | float) or self.rope_base <= 1:
            raise bad("model.rope_base", self.rope_base, "number > 1")

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ModelConfig:
        """Build from a params mapping; unknown keys are an error naming the allowed ones."""
        if not isinstance(d, dict):
            raise bad("model", d, "a mapping of " + ", ".join(f.name for f in fields(cls)))
        names = {f.name for f in fields(cls)}
        for k in d:
            if k not in names:
                raise bad(f"model.{k}", d[k], "no such field; fields are " + ", ".join(sorted(names)))
        return cls(**d)

    @property
    def head_dim(self) -> int:
        return self.d_model // self.n_heads

    @property
    def torch_dtype(self) -> torch.dtype:
        return DTYPES[self.dtype]

    def kv_bytes_per_position(self) -> int:
        """Bytes one token position costs in a KV cache: layers × 2 (K and V) × heads × head_dim × dtype size."""
        return (
            self.n_layers * 2 * self.n_heads * self.head_dim * torch.tensor([], dtype=self.torch_dtype).element_size()
        )

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def rope_cos_sin(pos: torch.Tensor, head_dim: int, base: float) -> tuple[torch.Tensor, torch.Tensor]:
    """cos/sin tables [T, head_dim/2] for absolute positions `pos` (computed in float32)."""
    inv = 1.0 / (base ** (torch.arange(0, head_dim, 2, device=pos.device, dtype=torch.float32) / head_dim))
    ang = pos.to(torch.float32)[:, None] * inv[None, :]
    return ang.cos(), ang.sin()


def apply_rope(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """Rotate pairs (x[2i], x[2i+1]) of x [B, H, T, D] by the position angles."""
    x1, x2 = x.float()[..., 0::2], x.float()[..., 1::2]
    out = torch.stack((x1 * cos - x2 * sin, x1 * sin + x2 * cos), dim=-1).flatten(-2)
    return out.to(x.dtype)


def attention_mask(qpos: torch.Tensor, kpos: torch.Tensor, window: int | None, sinks: int) -> torch.Tensor:
    """Boolean [Tq, Tk] mask: key at or before the query, and within the last `window` positions or a sink."""
    allowed = kpos[None, :] <= qpos[:, None]
    if window is not None:
        allowed &= (kpos[None, :] > qpos[:, None] - window) | (kpos[None, :] < sinks)
    return allowed


class Attention(nn.Module):
    def __init__(self, cfg: ModelConfig, layer: int) -> None:
        super().__init__()
        self.cfg, self.layer = cfg, layer
        self.qkv = nn.Linear(cfg.d_model, 3 * cfg.d_model, bias=False)
        self.out = nn.Linear(cfg.d_model, cfg.d_model, bias=False)

    def forward(self, x: torch.Tensor, pos: torch.Tensor, rope: tuple[torch.Tensor, torch.Tensor], cache: KVCache):
        b, t, _ = x.shape
        q, k, v = self.qkv(x).view(b, t, 3, self.cfg.n_heads, self.cfg.head_dim).permute(2, 0, 3, 1, 4)
        q, k = apply_rope(q, *rope), apply_rope(k, *rope)
        keys, values, kpos, plain = cache.update(self.layer, k, v, pos)
        if plain and keys.shape[2] == t:  # causal self-attention over exactly these positions: fused SDPA kernel
            y = F.scaled_dot_product_attention(q, keys, values, is_causal=t > 1)
        elif plain and t == 1:  # one query after all cached keys: nothing to mask
            y = F.scaled_dot_product_attention(q, keys, values)
        else:
            mask = attention_mask(pos, kpos, cache.window, cache.sinks)
            y = F.scaled_dot_product_attention(q, keys, values, attn_mask=mask)
        return self.out(y.transpose(1, 2).reshape(b, t, self.cfg.d_model))


class Block(nn.Module):
    def __init__(self, cfg: ModelConfig, layer: int) -> None:
        super().__init__()
        self.norm1, self.norm2 = nn.RMSNorm(cfg.d_model), nn.RMSNorm(cfg.d_model)
        self.attn = Attention(cfg, layer)
        d_ff = cfg.d_ff or 4 * cfg.d_model
        self.mlp = nn.Sequential(
            nn.Linear(cfg.d_model, d_ff, bias=False), nn.GELU(), nn.Linear(d_ff, cfg.d_model, bias=False)
        )

    def forward(self, x, pos, rope, cache):
        x = x + self.attn(self.norm1(x), pos, rope, cache)
        return x + self.mlp(self.norm2(x))


class DecoderLM(nn.Module):
    """Token embedding → n_layers pre-norm blocks → RMSNorm → LM head tied to the embedding."""

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        self.cfg = cfg
        gen = torch.Generator().manual_seed(cfg.seed)  # init from the seed alone, independent of global RNG state
        # modules are made without storage and without torch's default init (every weight is set below; on the
        # 16-layer CUDA shape the default init of ~0.9 B parameters on the CPU was wasted seconds per build)
        with torch.device("meta"):
            self.embed = nn.Embedding(cfg.vocab_size, cfg.d_model)
            self.blocks = nn.ModuleList(Block(cfg, i) for i in range(cfg.n_layers))
            self.norm = nn.RMSNorm(cfg.d_model)
        self.to_empty(device="cpu")
        with torch.no_grad():
            for name, p in self.named_parameters():
                if p.dim() == 2:
                    std = 0.02 / math.sqrt(2 * cfg.n_layers) if name.endswith(("out.weight", "mlp.2.weight")) else 0.02
                    p.copy_(torch.randn(p.shape, generator=gen) * std)
                else:  # RMSNorm gains start at one, as nn.RMSNorm's own init sets them
                    p.fill_(1.0)

    def forward(self, tokens: torch.Tensor, pos: torch.Tensor, cache: KVCache) -> torch.Tensor:
        """Logits [B, T, vocab] for tokens [B, T] at absolute positions pos [T]; K/V go through `cache`."""
        rope = rope_cos_sin(pos, self.cfg.head_dim, self.cfg.rope_base)
        x = self.embed(tokens)
        for blk in self.blocks:
            x = blk(x, pos, rope, cache)
        return F.linear(self.norm(x), self.embed.weight)


def build(cfg: ModelConfig, device: str = "cpu") -> DecoderLM:
    """The model in eval mode on `device` in cfg.dtype, weights random from cfg.seed."""
    return DecoderLM(cfg).to(device=device, dtype=cfg.torch_dtype).eval()


def n_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())
