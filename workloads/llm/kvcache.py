"""KV cache strategies behind one interface: none (recompute), full (append), sliding window (+ sinks), paged blocks.

`update(layer, k, v, pos)` takes the new keys/values [B, H, T, head_dim] (RoPE already applied) at absolute
positions pos [T] and returns the keys/values to attend to, their positions, and `plain` (keys are exactly
positions 0..pos[-1], so causal masking needs no explicit mask). Every cache counts, at layer 0, how many
attended positions it served from memory (stored before this call) and how many were computed in this call.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch

from workloads.llm.model import ModelConfig, bad

if TYPE_CHECKING:
    from workloads.llm.paged import BlockPool

KINDS = ("none", "full", "sliding", "paged")
EMPTY = 1 << 60  # position of an unused ring slot: after every query, so causal masking hides it


def kv_bytes(cfg: ModelConfig, positions: int) -> int:
    """Exact bytes of K and V for `positions` token positions: layers × 2 × heads × head_dim × positions × dtype."""
    return cfg.kv_bytes_per_position() * positions


@dataclass
class Stats:
    """Attended K/V positions served from the cache vs computed in the same forward (counted at layer 0)."""

    served: int = 0
    computed: int = 0

    @property
    def hit_rate(self) -> float:
        total = self.served + self.computed
        return self.served / total if total else 0.0


class KVCache(ABC):
    """Base: no window, no sinks; subclasses store K/V their own way."""

    window: int | None = None
    sinks: int = 0

    def __init__(self) -> None:
        self.stats = Stats()

    def _count(self, layer: int, attended: int, new: int) -> None:
        if layer == 0:
            self.stats.served += attended - new
            self.stats.computed += new

    @abstractmethod
    def update(self, layer: int, k: torch.Tensor, v: torch.Tensor, pos: torch.Tensor):
        """Store this step's K/V of `layer` at positions `pos`; return (keys, values, their positions, whether the
        causal mask applies) to attend over."""

    @abstractmethod
    def positions_held(self) -> int:
        """Token positions whose K/V this cache holds now (for the exact byte accounting)."""


class NoCache(KVCache):
    """Stores nothing: the caller feeds the whole sequence every step and everything is recomputed."""

    def update(self, layer, k, v, pos):
        self._count(layer, k.shape[2], k.shape[2])
        return k, v, pos, True

    def positions_held(self) -> int:
        return 0


class FullCache(KVCache):
    """Appends every position to buffers preallocated for `capacity` positions (grown by doubling if exceeded)."""

    def __init__(self, cfg: ModelConfig, batch: int = 1, capacity: int = 256, device: str = "cpu") -> None:
        super().__init__()
        shape = (cfg.n_layers, 2, batch, cfg.n_heads, max(1, capacity), cfg.head_dim)
        self.buf = torch.empty(shape, dtype=cfg.torch_dtype, device=device)
        self.length = 0

    def update(self, layer, k, v, pos):
        t = k.shape[2]
        start = self.length
        end = start + t
        if end > self.buf.shape[4]:  # amortised growth; generation preallocates exactly, so this is the rare path
            grown = torch.empty(
                (*self.buf.shape[:4], max(end, 2 * self.buf.shape[4]), self.buf.shape[5]),
                dtype=self.buf.dtype,
                device=self.buf.device,
            )
            grown[:, :, :, :, :start] = self.buf[:, :, :, :, :start]
            self.buf = grown
        self.buf[layer, 0, :, :, start:end] = k
        self.buf[layer, 1, :, :, start:end] = v
        if layer == len(self.buf) - 1:
            self.length = end
        self._count(layer, end, t)
        kpos = torch.arange(end, device=k.device)
        return self.buf[layer, 0, :, :, :end], self.buf[layer, 1, :, :, :end], kpos, True

    def positions_held(self) -> int:
        return self.length


class SlidingCache(KVCache):
    """Keeps the last `window` positions in a ring buffer, plus the first `sinks` positions (attention sinks).

    Sinks keep their original RoPE positions (keys are rotated before caching); StreamingLLM instead re-indexes
    positions inside the cache. Memory is fixed: (sinks + window) positions, allocated up front.
    """

    def __init__(self, cfg: ModelConfig, window: int, sinks: int = 0, batch: int = 1, device: str = "cpu") -> None:
        super().__init__()
        if isinstance(window, bool) or not isinstance(window, int) or window < 1:
            raise bad("window", window, "integer >= 1")
        if isinstance(sinks, bool) or not isinstance(sinks, int) or sinks < 0:
            raise bad("sinks", sinks, "integer >= 0")
        self.window, self.sinks, self.n_layers = window, sinks, cfg.n_layers
        slots = sinks + window
        self.k = torch.zeros(
            (cfg.n_layers, batch, cfg.n_heads, slots, cfg.head_dim), dtype=cfg.torch_dtype, device=device
        )
        self.v = torch.zeros_like(self.k)
        self.kpos = torch.full((slots,), EMPTY, dtype=torch.long, device=device)
        self.seen = 0  # positions written so far (python int: no device sync to decide the path)

    def _slots(self, pos: torch.Tensor) -> torch.Tensor:
        return torch.where(pos < self.sinks, pos, self.sinks + (pos - self.sinks) % self.window)

    def update(self, layer, k, v, pos):
        t = k.shape[2]
        self._count(layer, min(self.seen, self.sinks + self.window) + t, t)  # seen moves on at the last layer
        if t == 1:  # decode: write in place, attend over the whole ring (every slot is in window or empty)
            slot = self._slots(pos)
            self.k[layer].index_copy_(2, slot, k)
            self.v[layer].index_copy_(2, slot, v)
            if layer == 0:
                self.kpos.index_copy_(0, slot, pos)
            keys, values, kpos = self.k[layer], self.v[layer], self.kpos
        else:  # chunk: attend over what the ring held plus the whole chunk, then keep the chunk's last window
            keys = torch.cat((self.k[layer], k), dim=2)
            values = torch.cat((self.v[layer], v), dim=2)
            kpos = torch.cat((self.kpos, pos))
            keep = [i for i in range(t) if self.seen + i < self.sinks or i >= t - self.window]
            idx = torch.tensor(keep, device=k.device)
            slot = self._slots(pos[idx])
            self.k[layer].index_copy_(2, slot, k[:, :, idx])
            self.v[layer].index_copy_(2, slot, v[:, :, idx])
            if layer == self.n_layers - 1:
                self.kpos.index_copy_(0, slot, pos[idx])
        if layer == self.n_layers - 1:
            self.seen += t
        return keys, values, kpos, False

    def positions_held(self) -> int:
        return min(self.seen, self.sinks + self.window)


def make_cache(
    kind: str,
    cfg: ModelConfig,
    capacity: int,
    device: str = "cpu",
    window: int | None = None,
    sinks: int = 0,
    pool: BlockPool | None = None,
) -> KVCache:
    """A fresh cache of `kind` (none | full | sliding | paged) for one sequence of up to `capacity` positions."""
    if kind == "none":
        return NoCache()
    if kind == "full":
        return FullCache(cfg, capacity=capacity, device=device)
    if kind == "sliding":
        if window is None:
            raise bad("window", window, "integer >= 1 for the sliding cache")
        return SlidingCache(cfg, window, sinks, device=device)
    if kind == "paged":
        from workloads.llm.paged import PagedCache

        if pool is None:
            raise bad("pool", pool, "a BlockPool for the paged cache")
        return PagedCache(pool)
    raise bad("cache", kind, ", ".join(KINDS))
