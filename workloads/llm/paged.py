"""Paged KV cache: fixed-size blocks from a preallocated pool, a block table per sequence, prefix-block reuse.

Memory is taken per block (vLLM's PagedAttention layout, without its fused kernel: keys are gathered from the
block table before attention). `PrefixStore` maps a hash of all tokens up to the end of a full block to the
block holding their K/V, so a request sharing a prefix attaches those blocks and prefills only its suffix.
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict
from dataclasses import dataclass

import torch

from workloads.llm.kvcache import KVCache
from workloads.llm.model import ModelConfig, bad


class PoolExhaustedError(RuntimeError):
    """No free block and nothing evictable: the pool is too small for the sequences alive at once."""


class BlockPool:
    """`num_blocks` blocks of `block_size` positions for every layer's K and V, allocated once; refcounted."""

    def __init__(self, cfg: ModelConfig, num_blocks: int, block_size: int = 16, device: str = "cpu") -> None:
        for name, v in (("num_blocks", num_blocks), ("block_size", block_size)):
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise bad(name, v, "integer >= 1")
        self.cfg, self.block_size, self.num_blocks = cfg, block_size, num_blocks
        shape = (cfg.n_layers, num_blocks, cfg.n_heads, block_size, cfg.head_dim)
        self.k = torch.zeros(shape, dtype=cfg.torch_dtype, device=device)
        self.v = torch.zeros_like(self.k)
        self.refs = [0] * num_blocks
        self.free = list(range(num_blocks - 1, -1, -1))  # pop() hands out the lowest id first: deterministic
        self.evictor: PrefixStore | None = None

    def alloc(self) -> int:
        if not self.free and not (self.evictor and self.evictor.evict_one()):
            raise PoolExhaustedError(f"all {self.num_blocks} blocks of {self.block_size} positions are in use")
        b = self.free.pop()
        self.refs[b] = 1
        return b

    def incref(self, b: int) -> None:
        self.refs[b] += 1

    def decref(self, b: int) -> None:
        self.refs[b] -= 1
        if self.refs[b] == 0:
            self.free.append(b)

    @property
    def used(self) -> int:
        return self.num_blocks - len(self.free)


class PagedCache(KVCache):
    """One sequence's view of the pool: its block table; `prefix` blocks (already filled) come first."""

    def __init__(self, pool: BlockPool, prefix: list[int] | None = None) -> None:
        super().__init__()
        self.pool, self.table = pool, list(prefix or [])
        self.length = len(self.table) * pool.block_size
        self.reused = len(self.table)
        self._table_t: torch.Tensor | None = None

    def update(self, layer, k, v, pos):
        if k.shape[0] != 1:
            raise bad("batch", k.shape[0], "1 (a paged cache holds one sequence)")
        t, bs = k.shape[2], self.pool.block_size
        end = self.length + t
        if layer == 0 or self._table_t is None:
            while len(self.table) * bs < end:
                self.table.append(self.pool.alloc())
            # one upload per forward, shared by the layers: on CUDA a copy from pageable host memory per layer
            # made the host wait for the GPU queue at every layer instead of launching ahead
            self._table_t = torch.tensor(self.table, device=k.device)
        table = self._table_t
        self.pool.k[layer][table[pos // bs], :, pos % bs, :] = k[0].transpose(0, 1)
        self.pool.v[layer][table[pos // bs], :, pos % bs, :] = v[0].transpose(0, 1)
        nb = -(-end // bs)
        h, d = k.shape[1], k.shape[3]
        keys = self.pool.k[layer][table[:nb]].transpose(0, 1).reshape(1, h, nb * bs, d)[:, :, :end]
        values = self.pool.v[layer][table[:nb]].transpose(0, 1).reshape(1, h, nb * bs, d)[:, :, :end]
        self._count(layer, end, t)
        if layer == self.pool.cfg.n_layers - 1:
            self.length = end
        return keys, values, torch.arange(end, device=k.device), True

    def positions_held(self) -> int:
        return self.length

    def blocks_held(self) -> int:
        return len(self.table)

    def release(self) -> None:
        """Give the blocks back (shared prefix blocks stay while the store or other sequences hold them)."""
        for b in self.table:
            self.pool.decref(b)
        self.table = []
        self._table_t = None


@dataclass
class PrefixStats:
    requests: int = 0
    hit_requests: int = 0
    prompt_tokens: int = 0
    hit_tokens: int = 0

    @property
    def token_hit_rate(self) -> float:
        return self.hit_tokens / self.prompt_tokens if self.prompt_tokens else 0.0

    @property
    def request_hit_rate(self) -> float:
        return self.hit_requests / self.requests if self.requests else 0.0


class PrefixStore:
    """Hash of (all tokens up to a full block's end) → block id, LRU over `capacity_blocks` entries."""

    def __init__(self, pool: BlockPool, capacity_blocks: int) -> None:
        if isinstance(capacity_blocks, bool) or not isinstance(capacity_blocks, int) or capacity_blocks < 0:
            raise bad("capacity_blocks", capacity_blocks, "integer >= 0")
        self.pool, self.capacity = pool, capacity_blocks
        self.entries: OrderedDict[bytes, int] = OrderedDict()
        self.stats = PrefixStats()
        pool.evictor = self

    def _hashes(self, tokens: list[int], n_blocks: int) -> list[bytes]:
        bs, h, out = self.pool.block_size, hashlib.sha256(), []
        for i in range(n_blocks):
            h.update(b"".join(t.to_bytes(4, "little") for t in tokens[i * bs : (i + 1) * bs]))
            out.append(h.copy().digest())
        return out

    def match(self, tokens: list[int]) -> list[int]:
        """Blocks holding the longest stored prefix; at least one token is left to prefill (for its logits)."""
        blocks: list[int] = []
        for h in self._hashes(tokens, (len(tokens) - 1) // self.pool.block_size):
            b = self.entries.get(h)
            if b is None:
                break
            self.entries.move_to_end(h)
            self.pool.incref(b)
            blocks.append(b)
        s = self.stats
        s.requests += 1
        s.prompt_tokens += len(tokens)
        s.hit_tokens += len(blocks) * self.pool.block_size
        s.hit_requests += bool(blocks)
        return blocks

    def insert(self, tokens: list[int], table: list[int]) -> None:
        """Register the full prompt blocks of a prefilled sequence (its K/V there depend on the prompt only)."""
        for h, b in zip(self._hashes(tokens, len(tokens) // self.pool.block_size), table, strict=False):
            if h in self.entries:
                self.entries.move_to_end(h)
                continue
            if self.capacity == 0:
                return
            while len(self.entries) >= self.capacity and self.evict_one(any_ref=True):
                pass
            self.entries[h] = b
            self.pool.incref(b)

    def evict_one(self, any_ref: bool = False) -> bool:
        """Drop the least recently used entry (only one no sequence uses, unless any_ref); False if none."""
        for h, b in self.entries.items():
            if any_ref or self.pool.refs[b] == 1:
                del self.entries[h]
                self.pool.decref(b)
                return True
        return False
