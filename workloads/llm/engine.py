"""A paged-KV, continuous-batching LLM engine (vLLM's ideas, in plain torch + an optional Triton decode kernel).

- **Paged KV cache**: every layer's K/V live in one preallocated pool of fixed-size blocks ([blocks, block_size,
  kv_heads, head_dim]); each request owns a block table; a free-block allocator with reference counts hands blocks
  out. Block 0 is reserved as the "null" block that padded rows of a CUDA-graph batch write to.
- **Iteration-level (continuous) batching**: every `step()` schedules running requests first (a decode needs one
  token, a request still in prefill its next chunk), then admits waiting requests while the token budget and free
  blocks allow; a finished request leaves the batch at once and a new one joins at the next step.
- **Chunked prefill** mixed with decode: one forward holds the decode tokens of running requests and prompt
  chunks of new ones (budget `max_num_batched_tokens`).
- **Preemption by recompute**: when a running request needs a block and none is free, the most recently admitted
  request is preempted, its blocks freed, and it goes back to the front of the queue; on re-admission its prompt
  plus the tokens it had generated are prefilled again (greedy output is unchanged).
- **Prefix caching** by block hashes: a full block's key is a hash chained over all tokens up to its end; freed
  blocks with a key stay cached (LRU, reclaimed when the free list is empty) and a new request attaches the longest
  cached chain of its prompt's full blocks, prefilling only the rest.
- Sampling: greedy, or temperature + top-k + top-p with a per-request seeded generator; stop conditions:
  `max_tokens`, stop token ids, the model's context length.

Models: a `transformers` Llama (`LlamaForCausalLM`, any shape from a `LlamaConfig`) or the area's char model
(`workloads.llm.model.DecoderLM`), run by an adapter that reuses the model's own modules (norms, projections,
MLP, rotary tables), so the engine's numerics are the model's. Attention: PyTorch SDPA over blocks gathered from
the block tables (CPU and GPU), or on CUDA a Triton paged decode kernel that reads the blocks in place; decode-only
steps can be replayed as CUDA graphs, one per batch-size bucket.
"""

from __future__ import annotations

import hashlib
import itertools
import math
import time
from abc import ABC, abstractmethod
from collections import OrderedDict, deque
from dataclasses import dataclass, field
from typing import Any

import torch
from torch.nn import functional as F  # noqa: N812 - the conventional name

from workloads.llm.model import ConfigError

GRAPH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256)


class EngineError(ConfigError):
    """A bad request or engine setting; the message names the field, the value and what is allowed."""


def _int(field_: str, v: Any, lo: int) -> int:
    if isinstance(v, bool) or not isinstance(v, int) or v < lo:
        raise EngineError(f"{field_} {v!r}: allowed an integer >= {lo}")
    return v


# ----------------------------------------------------------------------------------------------- requests


@dataclass(frozen=True)
class SamplingParams:
    """temperature 0 = greedy; otherwise softmax(logits / T) restricted to top_k (0 = all) and the top_p mass."""

    max_tokens: int = 16
    temperature: float = 0.0
    top_p: float = 1.0
    top_k: int = 0
    seed: int | None = None
    stop_token_ids: tuple[int, ...] = ()

    def __post_init__(self) -> None:
        _int("max_tokens", self.max_tokens, 1)
        if isinstance(self.temperature, bool) or not isinstance(self.temperature, int | float) or self.temperature < 0:
            raise EngineError(f"temperature {self.temperature!r}: allowed a number >= 0 (0 = greedy)")
        tp = self.top_p
        if isinstance(tp, bool) or not isinstance(tp, int | float) or not 0 < tp <= 1:
            raise EngineError(f"top_p {tp!r}: allowed a number in (0, 1]")
        _int("top_k", self.top_k, 0)
        if self.seed is not None:
            _int("seed", self.seed, 0)
        for t in self.stop_token_ids:
            _int("stop_token_ids[]", t, 0)

    @property
    def greedy(self) -> bool:
        return self.temperature == 0


@dataclass
class Request:
    """One request's state in the engine; times are perf_counter seconds."""

    id: str
    prompt: list[int]
    params: SamplingParams
    arrival: float
    output: list[int] = field(default_factory=list)
    status: str = "waiting"  # waiting | running | finished
    finish_reason: str | None = None
    block_table: list[int] = field(default_factory=list)
    num_computed: int = 0  # tokens whose K/V are in the cache
    num_hashed: int = 0  # full blocks registered in the prefix cache
    cached_tokens: int = 0  # prompt tokens served from the prefix cache at (the last) admission
    last_hash: bytes = b""  # key of block num_hashed - 1 (the chain continues from it)
    preemptions: int = 0
    first_token_time: float | None = None
    token_times: list[float] = field(default_factory=list)
    generator: torch.Generator | None = None

    @property
    def tokens(self) -> list[int]:
        return self.prompt + self.output

    @property
    def num_tokens(self) -> int:
        return len(self.prompt) + len(self.output)

    @property
    def ttft(self) -> float:
        return (self.first_token_time or math.nan) - self.arrival

    @property
    def itl(self) -> list[float]:
        return [b - a for a, b in itertools.pairwise(self.token_times)]


# ----------------------------------------------------------------------------------------------- block pool


class BlockAllocator:
    """Free list + reference counts + the prefix cache (hash -> block) with an LRU of cached, unused blocks."""

    def __init__(self, num_blocks: int, block_size: int) -> None:
        self.num_blocks, self.block_size = num_blocks, block_size
        self.free: deque[int] = deque(range(1, num_blocks))  # block 0: the null block (padding rows write there)
        self.refs = [0] * num_blocks
        self.cached: dict[bytes, int] = {}
        self.block_hash: dict[int, bytes] = {}
        self.evictable: OrderedDict[int, None] = OrderedDict()  # ref 0, holding a cached block: LRU order

    @property
    def usable(self) -> int:
        return self.num_blocks - 1

    @property
    def num_free(self) -> int:
        return len(self.free) + len(self.evictable)

    @property
    def used(self) -> int:
        return self.usable - self.num_free

    def alloc(self) -> int:
        if self.free:
            b = self.free.popleft()
        elif self.evictable:
            b, _ = self.evictable.popitem(last=False)
            del self.cached[self.block_hash.pop(b)]
        else:
            raise RuntimeError("no free KV block")  # the scheduler checks num_free first
        self.refs[b] = 1
        return b

    def incref(self, b: int) -> None:
        if self.refs[b] == 0:
            self.evictable.pop(b, None)
        self.refs[b] += 1

    def decref(self, b: int) -> None:
        self.refs[b] -= 1
        if self.refs[b] == 0:
            if b in self.block_hash:
                self.evictable[b] = None
            else:
                self.free.append(b)

    def register(self, b: int, h: bytes) -> None:
        if h not in self.cached and b not in self.block_hash:
            self.cached[h] = b
            self.block_hash[b] = h


def block_hashes(tokens: list[int], block_size: int, n_blocks: int, start: int = 0, prev: bytes = b"") -> list[bytes]:
    """Chained sha256 of each full block: the key of block i covers every token up to its end."""
    out = []
    for i in range(start, n_blocks):
        h = hashlib.sha256(prev)
        h.update(b"".join(t.to_bytes(4, "little") for t in tokens[i * block_size : (i + 1) * block_size]))
        prev = h.digest()
        out.append(prev)
    return out


# ----------------------------------------------------------------------------------------------- model adapters


class Adapter(ABC):
    """What the engine needs from a model: embeddings, per-layer q/k/v and the rest of the layer, the LM head."""

    n_layers: int
    n_heads: int
    n_kv_heads: int
    head_dim: int
    vocab_size: int
    max_positions: int
    dtype: torch.dtype
    device: torch.device

    @abstractmethod
    def embed(self, tokens: torch.Tensor) -> torch.Tensor: ...

    @abstractmethod
    def rope(self, x: torch.Tensor, positions: torch.Tensor) -> Any: ...

    @abstractmethod
    def qkv(self, i: int, h: torch.Tensor, rope: Any) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, Any]: ...

    @abstractmethod
    def post(self, i: int, h: torch.Tensor, attn: torch.Tensor, state: Any) -> torch.Tensor: ...

    @abstractmethod
    def logits(self, h: torch.Tensor) -> torch.Tensor: ...

    @abstractmethod
    def weight_bytes(self) -> int: ...


def _rotate_half(x: torch.Tensor) -> torch.Tensor:
    x1, x2 = x.chunk(2, dim=-1)
    return torch.cat((-x2, x1), dim=-1)


class LlamaAdapter(Adapter):
    """A transformers LlamaForCausalLM; q/k/v and gate/up projections fused into one matmul each (same weights)."""

    def __init__(self, model: Any) -> None:
        cfg = model.config
        self.model, self.cfg = model, cfg
        self.n_layers, self.n_heads = cfg.num_hidden_layers, cfg.num_attention_heads
        self.n_kv_heads = cfg.num_key_value_heads
        self.head_dim = getattr(cfg, "head_dim", None) or cfg.hidden_size // cfg.num_attention_heads
        self.vocab_size, self.max_positions = cfg.vocab_size, cfg.max_position_embeddings
        p = next(model.parameters())
        self.dtype, self.device = p.dtype, p.device
        self.layers = model.model.layers
        with torch.no_grad():
            self.w_qkv = [
                torch.cat([la.self_attn.q_proj.weight, la.self_attn.k_proj.weight, la.self_attn.v_proj.weight])
                for la in self.layers
            ]
            self.w_gu = [torch.cat([la.mlp.gate_proj.weight, la.mlp.up_proj.weight]) for la in self.layers]
        self.q_size, self.kv_size = self.n_heads * self.head_dim, self.n_kv_heads * self.head_dim
        self.d_ff = cfg.intermediate_size

    def embed(self, tokens):
        return self.model.model.embed_tokens(tokens)

    def rope(self, x, positions):
        cos, sin = self.model.model.rotary_emb(x, positions[None])
        return cos[0][:, None, :], sin[0][:, None, :]

    def qkv(self, i, h, rope):
        la = self.layers[i]
        x = la.input_layernorm(h)
        qkv = F.linear(x, self.w_qkv[i])
        q, k, v = qkv.split([self.q_size, self.kv_size, self.kv_size], dim=-1)
        n = h.shape[0]
        q = q.view(n, self.n_heads, self.head_dim)
        k = k.view(n, self.n_kv_heads, self.head_dim)
        v = v.view(n, self.n_kv_heads, self.head_dim)
        cos, sin = rope
        q = q * cos + _rotate_half(q) * sin
        k = k * cos + _rotate_half(k) * sin
        return q, k, v, None

    def post(self, i, h, attn, state):
        la = self.layers[i]
        h = h + la.self_attn.o_proj(attn)
        x = la.post_attention_layernorm(h)
        g, u = F.linear(x, self.w_gu[i]).split([self.d_ff, self.d_ff], dim=-1)
        return h + la.mlp.down_proj(la.mlp.act_fn(g) * u)

    def logits(self, h):
        return self.model.lm_head(self.model.model.norm(h))

    def weight_bytes(self) -> int:
        """Bytes a decode step reads: every weight once (the fused copies replace q/k/v and gate/up)."""
        total = 0
        for name, p in self.model.named_parameters():
            if any(s in name for s in ("q_proj", "k_proj", "v_proj", "gate_proj", "up_proj", "embed_tokens")):
                continue
            total += p.numel() * p.element_size()
        total += sum(w.numel() * w.element_size() for w in self.w_qkv + self.w_gu)
        if self.cfg.tie_word_embeddings:  # the LM head reads the embedding table
            w = self.model.model.embed_tokens.weight
            total += w.numel() * w.element_size()
        return total


class CharAdapter(Adapter):
    """The area's DecoderLM (fused qkv, interleaved RoPE, GELU MLP, LM head tied to the embedding)."""

    def __init__(self, model: Any) -> None:
        from workloads.llm.model import rope_cos_sin

        self.model, cfg = model, model.cfg
        self.cfg, self._rope = cfg, rope_cos_sin
        self.n_layers, self.n_heads, self.n_kv_heads = cfg.n_layers, cfg.n_heads, cfg.n_heads
        self.head_dim, self.vocab_size, self.max_positions = cfg.head_dim, cfg.vocab_size, 1 << 20
        p = next(model.parameters())
        self.dtype, self.device = p.dtype, p.device

    def embed(self, tokens):
        return self.model.embed(tokens)

    def rope(self, x, positions):
        cos, sin = self._rope(positions, self.head_dim, self.cfg.rope_base)
        return cos[:, None, :], sin[:, None, :]

    def qkv(self, i, h, rope):
        blk = self.model.blocks[i]
        q, k, v = blk.attn.qkv(blk.norm1(h)).view(h.shape[0], 3, self.n_heads, self.head_dim).unbind(1)
        cos, sin = rope

        def rot(x):
            x1, x2 = x.float()[..., 0::2], x.float()[..., 1::2]
            return torch.stack((x1 * cos - x2 * sin, x1 * sin + x2 * cos), dim=-1).flatten(-2).to(x.dtype)

        return rot(q), rot(k), v, None

    def post(self, i, h, attn, state):
        blk = self.model.blocks[i]
        h = h + blk.attn.out(attn)
        return h + blk.mlp(blk.norm2(h))

    def logits(self, h):
        return F.linear(self.model.norm(h), self.model.embed.weight)

    def weight_bytes(self) -> int:
        return sum(p.numel() * p.element_size() for p in self.model.parameters())


def adapter_for(model: Any) -> Adapter:
    if hasattr(model, "model") and hasattr(model.model, "layers"):
        return LlamaAdapter(model)
    if hasattr(model, "blocks"):
        return CharAdapter(model)
    raise EngineError(f"model {type(model).__name__!r}: allowed a transformers Llama or workloads.llm DecoderLM")


# ----------------------------------------------------------------------------------------------- Llama shapes

LLAMA_SHAPES: dict[str, dict[str, Any]] = {
    # Llama-3.2-1B-like and Llama-3.1-8B-like shapes (public config sizes); weights are random, nothing downloaded
    "llama-1b": dict(
        hidden_size=2048,
        intermediate_size=8192,
        num_hidden_layers=16,
        num_attention_heads=32,
        num_key_value_heads=8,
        vocab_size=128256,
        max_position_embeddings=8192,
        tie_word_embeddings=True,
    ),
    "llama-8b": dict(
        hidden_size=4096,
        intermediate_size=14336,
        num_hidden_layers=32,
        num_attention_heads=32,
        num_key_value_heads=8,
        vocab_size=128256,
        max_position_embeddings=8192,
        tie_word_embeddings=False,
    ),
    "llama-tiny": dict(  # for CPU tests
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        vocab_size=256,  # UTF-8 bytes as tokens (the server's byte tokenizer)
        max_position_embeddings=2048,
        tie_word_embeddings=False,
    ),
}


def build_llama(shape: str, device: str = "cpu", dtype: str = "float32", seed: int = 0) -> Any:
    """A random-weight LlamaForCausalLM of a named shape, initialised directly on `device` in `dtype`."""
    from transformers import LlamaConfig, LlamaForCausalLM

    if shape not in LLAMA_SHAPES:
        raise EngineError(f"model {shape!r}: allowed {', '.join(LLAMA_SHAPES)}")
    cfg = LlamaConfig(
        **LLAMA_SHAPES[shape],
        rope_parameters={"rope_type": "default", "rope_theta": 500000.0},
        rms_norm_eps=1e-5,
        bos_token_id=None,
        eos_token_id=None,
        pad_token_id=0,
    )
    torch_dtype = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}[dtype]
    torch.manual_seed(seed)
    prev = torch.get_default_dtype()
    torch.set_default_dtype(torch_dtype)
    try:
        with torch.device(device):
            model = LlamaForCausalLM(cfg)
    finally:
        torch.set_default_dtype(prev)
    model.generation_config.eos_token_id = None
    model.generation_config.pad_token_id = 0
    return model.eval()


# ----------------------------------------------------------------------------------------------- attention


def _triton_decode():
    """The Triton paged decode kernel (imported lazily: Triton exists only where CUDA does)."""
    import triton
    import triton.language as tl

    @triton.jit
    def kernel(q_ptr, k_ptr, v_ptr, bt_ptr, len_ptr, o_ptr, scale, bt_stride, H: tl.constexpr,  # noqa: N803
               GROUP: tl.constexpr, HKV: tl.constexpr, BS: tl.constexpr, D: tl.constexpr):  # noqa: N803  # fmt: skip
        b = tl.program_id(0)
        h = tl.program_id(1)
        kvh = h // GROUP
        n = tl.load(len_ptr + b)
        offs_d = tl.arange(0, D)
        offs_s = tl.arange(0, BS)
        q = tl.load(q_ptr + (b * H + h) * D + offs_d).to(tl.float32) * scale
        m_i = tl.max(tl.full([BS], float("-inf"), tl.float32), 0)
        l_i = tl.sum(tl.zeros([BS], tl.float32), 0)
        acc = tl.zeros([D], tl.float32)
        for i in range(0, tl.cdiv(n, BS)):
            blk = tl.load(bt_ptr + b * bt_stride + i).to(tl.int64)
            base = ((blk * BS + offs_s) * HKV + kvh) * D
            k = tl.load(k_ptr + base[:, None] + offs_d[None, :]).to(tl.float32)
            s = tl.sum(k * q[None, :], 1)
            s = tl.where(i * BS + offs_s < n, s, float("-inf"))
            m_new = tl.maximum(m_i, tl.max(s, 0))
            p = tl.exp(s - m_new)
            alpha = tl.exp(m_i - m_new)
            v = tl.load(v_ptr + base[:, None] + offs_d[None, :]).to(tl.float32)
            acc = acc * alpha + tl.sum(p[:, None] * v, 0)
            l_i = l_i * alpha + tl.sum(p, 0)
            m_i = m_new
        tl.store(o_ptr + (b * H + h) * D + offs_d, (acc / l_i).to(o_ptr.dtype.element_ty))

    return kernel


_KERNEL: list[Any] = []


def triton_paged_decode(q, k_cache, v_cache, block_tables, ctx_lens, scale):
    """q [B, H, D]; caches [blocks, bs, HKV, D]; block_tables [B, max_blocks] int32; ctx_lens [B] int32."""
    if not _KERNEL:
        _KERNEL.append(_triton_decode())
    b, h, d = q.shape
    hkv, bs = k_cache.shape[2], k_cache.shape[1]
    out = torch.empty_like(q)
    _KERNEL[0][(b, h)](
        q, k_cache, v_cache, block_tables, ctx_lens, out, scale, block_tables.stride(0), h, h // hkv, hkv, bs, d
    )
    return out


# ----------------------------------------------------------------------------------------------- the engine


@dataclass(frozen=True)
class EngineConfig:
    block_size: int = 16
    num_blocks: int = 0  # 0: sized from kv_cache_gb (GPU) or max_num_seqs full-length sequences (CPU)
    kv_cache_gb: float = 0.0
    max_num_seqs: int = 64
    max_num_batched_tokens: int = 2048
    max_model_len: int = 2048
    prefix_caching: bool = True
    attention: str = "sdpa"  # sdpa | triton
    cuda_graphs: bool = False

    def __post_init__(self) -> None:
        _int("block_size", self.block_size, 1)
        _int("num_blocks", self.num_blocks, 0)
        _int("max_num_seqs", self.max_num_seqs, 1)
        _int("max_num_batched_tokens", self.max_num_batched_tokens, 1)
        _int("max_model_len", self.max_model_len, 2)
        if self.attention not in ("sdpa", "triton"):
            raise EngineError(f"attention {self.attention!r}: allowed sdpa, triton")
        if self.cuda_graphs and self.attention != "triton":
            raise EngineError("cuda_graphs True: allowed only with attention 'triton' (static shapes)")


@dataclass
class EngineStats:
    steps: int = 0
    preemptions: int = 0
    prompt_tokens: int = 0
    cached_prompt_tokens: int = 0
    generated_tokens: int = 0
    graph_steps: int = 0
    peak_blocks_used: int = 0


class LLMEngine:
    """Continuous batching over a paged KV cache. `add_request` queues; each `step()` runs one forward."""

    def __init__(self, model: Any, config: EngineConfig | None = None, name: str = "model") -> None:
        self.cfg = c = config or EngineConfig()
        self.name = name
        self.m = adapter_for(model)
        m = self.m
        if c.max_model_len > m.max_positions:
            raise EngineError(f"max_model_len {c.max_model_len}: allowed <= the model's {m.max_positions} positions")
        per_block = 2 * m.n_layers * c.block_size * m.n_kv_heads * m.head_dim * torch.finfo(m.dtype).bits // 8
        if c.num_blocks:
            nb = c.num_blocks
        elif c.kv_cache_gb:
            nb = int(c.kv_cache_gb * 2**30 // per_block)
        else:
            nb = c.max_num_seqs * -(-c.max_model_len // c.block_size) + 1
        if nb < 2:
            raise EngineError(f"num_blocks {nb}: allowed >= 2 (block 0 is reserved)")
        self.bytes_per_block = per_block
        self.max_blocks_per_seq = -(-c.max_model_len // c.block_size)
        shape = (m.n_layers, nb, c.block_size, m.n_kv_heads, m.head_dim)
        self.k_cache = torch.zeros(shape, dtype=m.dtype, device=m.device)
        self.v_cache = torch.zeros(shape, dtype=m.dtype, device=m.device)
        self.alloc = BlockAllocator(nb, c.block_size)
        self.waiting: deque[Request] = deque()
        self.running: list[Request] = []
        self.finished: list[Request] = []
        self.stats = EngineStats()
        self.scale = 1.0 / math.sqrt(m.head_dim)
        self._ids = 0
        self._graphs: dict[int, Any] = {}
        self.last_logits: tuple[list[Request], torch.Tensor] | None = None
        self._static: dict[str, torch.Tensor] = {}
        if c.cuda_graphs:
            self._capture_graphs()

    # ---- requests

    def add_request(self, prompt: list[int], params: SamplingParams | None = None, request_id: str | None = None):
        """Queue a request; a bad prompt (empty, token out of the vocabulary, too long) is refused naming it."""
        params = params or SamplingParams()
        c = self.cfg
        if not isinstance(prompt, list) or not prompt:
            raise EngineError(f"prompt {prompt!r:.60}: allowed a non-empty list of token ids")
        for t in prompt:
            if isinstance(t, bool) or not isinstance(t, int) or not 0 <= t < self.m.vocab_size:
                raise EngineError(f"prompt token {t!r}: allowed integers in [0, {self.m.vocab_size})")
        if len(prompt) >= c.max_model_len:
            raise EngineError(
                f"prompt length {len(prompt)}: allowed < max_model_len {c.max_model_len} (room for a new token)"
            )
        need = -(-min(len(prompt) + params.max_tokens, c.max_model_len) // c.block_size)
        if need > self.alloc.usable:
            raise EngineError(f"prompt length {len(prompt)}: needs {need} KV blocks, the pool has {self.alloc.usable}")
        self._ids += 1
        req = Request(request_id or f"req-{self._ids}", list(prompt), params, time.perf_counter())
        if not params.greedy:
            seed = params.seed if params.seed is not None else self._ids
            req.generator = torch.Generator(device=self.m.device).manual_seed(seed)
        self.waiting.append(req)
        return req

    def has_unfinished(self) -> bool:
        return bool(self.waiting or self.running)

    def abort(self, req: Request) -> None:
        if req in self.running:
            self.running.remove(req)
        if req in self.waiting:
            self.waiting.remove(req)
        self._finish(req, "abort")

    # ---- blocks

    def _free_blocks(self, req: Request) -> None:
        for b in reversed(req.block_table):  # tail first: the chain's head stays cached longest (LRU)
            self.alloc.decref(b)
        req.block_table = []

    def _finish(self, req: Request, reason: str) -> None:
        req.status, req.finish_reason = "finished", reason
        self._free_blocks(req)
        self.finished.append(req)

    def _preempt(self, req: Request) -> None:
        """Recompute preemption: drop its KV; it re-enters the queue first and re-prefills prompt + output."""
        self._free_blocks(req)
        req.num_computed = req.num_hashed = 0
        req.status = "waiting"
        req.preemptions += 1
        self.stats.preemptions += 1
        self.waiting.appendleft(req)

    def _blocks_needed(self, req: Request, upto: int) -> int:
        return max(0, -(-upto // self.cfg.block_size) - len(req.block_table))

    def _attach_prefix(self, req: Request) -> None:
        if not self.cfg.prefix_caching:
            return
        bs, toks = self.cfg.block_size, req.tokens
        for h in block_hashes(toks, bs, (len(toks) - 1) // bs):  # leave >= 1 token to compute (its logits)
            b = self.alloc.cached.get(h)
            if b is None:
                break
            self.alloc.incref(b)
            req.block_table.append(b)
            req.last_hash = h
        req.num_hashed = len(req.block_table)
        req.num_computed = req.cached_tokens = req.num_hashed * bs

    def _register_full_blocks(self, req: Request) -> None:
        if not self.cfg.prefix_caching:
            return
        bs = self.cfg.block_size
        full = req.num_computed // bs
        if full <= req.num_hashed:
            return
        prev = req.last_hash if req.num_hashed else b""
        for i, h in enumerate(block_hashes(req.tokens, bs, full, req.num_hashed, prev), start=req.num_hashed):
            self.alloc.register(req.block_table[i], h)
            req.last_hash = h
        req.num_hashed = full

    # ---- scheduling

    def _schedule(self) -> list[tuple[Request, int]]:
        c = self.cfg
        budget = c.max_num_batched_tokens
        sched: list[tuple[Request, int]] = []
        preempted = False
        i = 0
        while i < len(self.running) and budget > 0:
            req = self.running[i]
            n = min(req.num_tokens - req.num_computed, budget)
            need = self._blocks_needed(req, req.num_computed + n)
            while need > self.alloc.num_free:
                victim = self.running.pop()
                self._preempt(victim)
                preempted = True
                if victim is req:
                    break
            if req.status != "running":
                break
            for _ in range(need):
                req.block_table.append(self.alloc.alloc())
            sched.append((req, n))
            budget -= n
            i += 1
        while self.waiting and budget > 0 and len(self.running) < c.max_num_seqs and not preempted:
            req = self.waiting[0]
            self._attach_prefix(req)
            n = min(req.num_tokens - req.num_computed, budget)
            need = self._blocks_needed(req, req.num_computed + n)
            if need > self.alloc.num_free:
                self._free_blocks(req)
                req.num_computed = req.num_hashed = req.cached_tokens = 0
                break
            for _ in range(need):
                req.block_table.append(self.alloc.alloc())
            self.waiting.popleft()
            req.status = "running"
            self.running.append(req)
            if not req.output and not req.preemptions:
                self.stats.prompt_tokens += len(req.prompt)
                self.stats.cached_prompt_tokens += req.cached_tokens
            sched.append((req, n))
            budget -= n
        self.stats.peak_blocks_used = max(self.stats.peak_blocks_used, self.alloc.used)
        return sched

    # ---- forward

    def _forward_eager(self, tokens, positions, slots, seqs, sample_rows) -> torch.Tensor:
        """tokens/positions/slots [N]; seqs: (row start, n, ctx_len, block_table) each. Logits of sample_rows."""
        m, dev = self.m, self.m.device
        n_tok = tokens.shape[0]
        decode = [j for j, s in enumerate(seqs) if s[1] == 1]
        chunks = [s for s in seqs if s[1] != 1]
        if decode:
            d_rows = torch.tensor([seqs[j][0] for j in decode], device=dev)
            lens = [seqs[j][2] for j in decode]
            width = max(-(-x // self.cfg.block_size) for x in lens)
            if self.cfg.attention == "triton":  # one row stride for every step: Triton compiles the kernel once
                width = self.max_blocks_per_seq
            bt = torch.zeros((len(decode), width), dtype=torch.int32)
            for r, j in enumerate(decode):
                row = seqs[j][3][:width]
                bt[r, : len(row)] = torch.tensor(row, dtype=torch.int32)
            bt = bt.to(dev)
            ctx = torch.tensor(lens, dtype=torch.int32, device=dev)
            kpos = torch.arange(width * self.cfg.block_size, device=dev)
            d_mask = (kpos[None, :] < ctx[:, None])[:, None, None, :]
        # each prefill chunk's block table and causal mask, built once per step (not per layer)
        chunk_meta = [(start, n, *self._chunk_meta(table, ctx_len, n, dev)) for start, n, ctx_len, table in chunks]
        h = m.embed(tokens[None])[0]
        rope = m.rope(h, positions)
        for i in range(m.n_layers):
            q, k, v, st = m.qkv(i, h, rope)
            kc = self.k_cache[i].view(-1, m.n_kv_heads, m.head_dim)
            vc = self.v_cache[i].view(-1, m.n_kv_heads, m.head_dim)
            kc.index_copy_(0, slots, k)
            vc.index_copy_(0, slots, v)
            out = torch.empty((n_tok, m.n_heads, m.head_dim), dtype=q.dtype, device=dev)
            if decode:
                qd = q.index_select(0, d_rows)
                if self.cfg.attention == "triton":
                    od = triton_paged_decode(qd, self.k_cache[i], self.v_cache[i], bt, ctx, self.scale)
                else:
                    od = self._sdpa_gather(qd[:, :, None, :], i, bt, d_mask)[:, :, 0, :]
                out.index_copy_(0, d_rows, od)
            for start, n, ctx_len, bt_c, mask in chunk_meta:
                out[start : start + n] = self._chunk_attention(q[start : start + n], i, bt_c, ctx_len, mask)
            h = m.post(i, h, out.reshape(n_tok, -1), st)
        return m.logits(h.index_select(0, sample_rows))

    def _sdpa_gather(self, q, layer, bt, mask):
        """q [B, H, Tq, D]; keys of each row's block table gathered to [B, HKV, width * bs, D]."""
        b = bt.shape[0]
        k = self.k_cache[layer][bt].reshape(b, -1, self.m.n_kv_heads, self.m.head_dim).transpose(1, 2)
        v = self.v_cache[layer][bt].reshape(b, -1, self.m.n_kv_heads, self.m.head_dim).transpose(1, 2)
        return F.scaled_dot_product_attention(q, k, v, attn_mask=mask, enable_gqa=True)

    def _chunk_meta(self, table: list[int], ctx_len: int, n: int, dev) -> tuple[int, torch.Tensor, Any]:
        """(ctx_len, block ids holding positions 0..ctx_len-1, causal mask or None when the chunk is the whole
        context) of a prefill chunk of n queries at positions ctx_len-n .. ctx_len-1."""
        bt = torch.tensor(table[: -(-ctx_len // self.cfg.block_size)], device=dev)
        if ctx_len == n:
            return ctx_len, bt, None
        qpos = torch.arange(ctx_len - n, ctx_len, device=dev)
        return ctx_len, bt, torch.arange(ctx_len, device=dev)[None, :] <= qpos[:, None]

    def _chunk_attention(self, q, layer, bt, ctx_len, mask):
        """A prefill chunk's queries over all ctx_len keys of its block table (causal)."""
        k = self.k_cache[layer][bt].reshape(-1, self.m.n_kv_heads, self.m.head_dim)[:ctx_len].transpose(0, 1)
        v = self.v_cache[layer][bt].reshape(-1, self.m.n_kv_heads, self.m.head_dim)[:ctx_len].transpose(0, 1)
        qh = q.transpose(0, 1)[None]
        if mask is None:
            o = F.scaled_dot_product_attention(qh, k[None], v[None], is_causal=True, enable_gqa=True)
        else:
            o = F.scaled_dot_product_attention(qh, k[None], v[None], attn_mask=mask, enable_gqa=True)
        return o[0].transpose(0, 1)

    # ---- CUDA graphs for decode-only steps

    def _graph_forward(self, b: int) -> torch.Tensor:
        s, m = self._static, self.m
        tokens, positions, slots = s["tokens"][:b], s["positions"][:b], s["slots"][:b]
        bt, ctx = s["bt"][:b], s["ctx"][:b]
        h = m.embed(tokens[None])[0]
        rope = m.rope(h, positions)
        for i in range(m.n_layers):
            q, k, v, st = m.qkv(i, h, rope)
            self.k_cache[i].view(-1, m.n_kv_heads, m.head_dim).index_copy_(0, slots, k)
            self.v_cache[i].view(-1, m.n_kv_heads, m.head_dim).index_copy_(0, slots, v)
            o = triton_paged_decode(q.contiguous(), self.k_cache[i], self.v_cache[i], bt, ctx, self.scale)
            h = m.post(i, h, o.reshape(b, -1), st)
        return m.logits(h)

    def _capture_graphs(self) -> None:
        dev, mb = self.m.device, self.max_blocks_per_seq
        top = max(x for x in GRAPH_BUCKETS if x <= self.cfg.max_num_seqs) if self.cfg.max_num_seqs >= 1 else 1
        n = max(top, self.cfg.max_num_seqs)
        self._static = {
            "tokens": torch.zeros(n, dtype=torch.long, device=dev),
            "positions": torch.zeros(n, dtype=torch.long, device=dev),
            "slots": torch.zeros(n, dtype=torch.long, device=dev),
            "bt": torch.zeros((n, mb), dtype=torch.int32, device=dev),
            "ctx": torch.ones(n, dtype=torch.int32, device=dev),
        }
        pool = None
        for b in [x for x in GRAPH_BUCKETS if x <= n]:
            stream = torch.cuda.Stream()
            stream.wait_stream(torch.cuda.current_stream())
            with torch.cuda.stream(stream), torch.no_grad():
                for _ in range(2):
                    self._graph_forward(b)
            torch.cuda.current_stream().wait_stream(stream)
            g = torch.cuda.CUDAGraph()
            with torch.cuda.graph(g, pool=pool), torch.no_grad():
                out = self._graph_forward(b)
            pool = g.pool()
            self._graphs[b] = (g, out)
        torch.cuda.synchronize()

    def _run_graph(self, sched: list[tuple[Request, int]]) -> torch.Tensor:
        b = len(sched)
        bucket = min(x for x in self._graphs if x >= b)
        s, bs = self._static, self.cfg.block_size
        toks, pos, slots, ctx = [], [], [], []
        bt = torch.zeros((bucket, self.max_blocks_per_seq), dtype=torch.int32)
        for r, (req, _) in enumerate(sched):
            p = req.num_computed
            toks.append(req.tokens[p])
            pos.append(p)
            slots.append(req.block_table[p // bs] * bs + p % bs)
            ctx.append(p + 1)
            bt[r, : len(req.block_table)] = torch.tensor(req.block_table, dtype=torch.int32)
        pad = bucket - b
        s["tokens"][:bucket].copy_(torch.tensor(toks + [0] * pad), non_blocking=True)
        s["positions"][:bucket].copy_(torch.tensor(pos + [0] * pad), non_blocking=True)
        s["slots"][:bucket].copy_(torch.tensor(slots + [0] * pad), non_blocking=True)
        s["ctx"][:bucket].copy_(torch.tensor(ctx + [1] * pad, dtype=torch.int32), non_blocking=True)
        s["bt"][:bucket].copy_(bt, non_blocking=True)
        g, out = self._graphs[bucket]
        g.replay()
        self.stats.graph_steps += 1
        return out[:b]

    # ---- sampling

    def _sample(self, logits: torch.Tensor, reqs: list[Request]) -> list[int]:
        logits = logits.float()
        picks = logits.argmax(-1).tolist()
        for r, req in enumerate(reqs):
            sp = req.params
            if sp.greedy:
                continue
            x = logits[r] / sp.temperature
            if sp.top_k:
                kth = torch.topk(x, min(sp.top_k, x.numel())).values[-1]
                x = x.masked_fill(x < kth, -math.inf)
            if sp.top_p < 1:
                srt, idx = torch.sort(x, descending=True)
                probs = srt.softmax(-1)
                drop = probs.cumsum(-1) - probs >= sp.top_p  # keep the smallest set whose mass reaches top_p
                srt = srt.masked_fill(drop, -math.inf)
                x = torch.full_like(x, -math.inf).scatter(0, idx, srt)
            picks[r] = int(torch.multinomial(x.softmax(-1), 1, generator=req.generator))
        return picks

    # ---- one iteration

    @torch.no_grad()
    def step(self) -> list[tuple[Request, int]]:
        """Schedule, run one forward, sample; returns (request, new token) for each request that got a token."""
        sched = self._schedule()
        if not sched:
            return []
        self.stats.steps += 1
        bs = self.cfg.block_size
        samplers = [(r, req) for r, (req, n) in enumerate(sched) if req.num_computed + n == req.num_tokens]
        decode_only = all(n == 1 and req.num_computed + 1 == req.num_tokens for req, n in sched)
        if self._graphs and decode_only and len(sched) <= max(self._graphs):
            logits = self._run_graph(sched)
            sample_reqs = [req for req, _ in sched]
        else:
            toks, pos, slots, seqs, rows = [], [], [], [], []
            for req, n in sched:
                p0 = req.num_computed
                seqs.append((len(toks), n, p0 + n, req.block_table))
                all_t = req.tokens
                for p in range(p0, p0 + n):
                    toks.append(all_t[p])
                    pos.append(p)
                    slots.append(req.block_table[p // bs] * bs + p % bs)
                if p0 + n == req.num_tokens:
                    rows.append(len(toks) - 1)
            dev = self.m.device
            logits = self._forward_eager(
                torch.tensor(toks, device=dev),
                torch.tensor(pos, device=dev),
                torch.tensor(slots, device=dev),
                seqs,
                torch.tensor(rows, dtype=torch.long, device=dev),
            )
            sample_reqs = [req for _, req in samplers]
        for req, n in sched:
            req.num_computed += n
            self._register_full_blocks(req)
        self.last_logits = (sample_reqs, logits)  # for checks that compare logits (no copy is made)
        picks = self._sample(logits, sample_reqs) if sample_reqs else []
        now = time.perf_counter()
        events = []
        for req, tok in zip(sample_reqs, picks, strict=True):
            req.output.append(tok)
            self.stats.generated_tokens += 1
            if req.first_token_time is None:
                req.first_token_time = now
            req.token_times.append(now)
            events.append((req, tok))
            sp = req.params
            reason = None
            if tok in sp.stop_token_ids:
                reason = "stop"
            elif len(req.output) >= sp.max_tokens or req.num_tokens >= self.cfg.max_model_len:
                reason = "length"
            if reason:
                self.running.remove(req)
                self._finish(req, reason)
        return events

    def generate(self, prompts: list[list[int]], params: SamplingParams | list[SamplingParams]) -> list[Request]:
        """Queue every prompt, step until all finish; requests in prompt order."""
        ps = params if isinstance(params, list) else [params] * len(prompts)
        reqs = [self.add_request(p, sp) for p, sp in zip(prompts, ps, strict=True)]
        while self.has_unfinished():
            self.step()
        return reqs

    def kv_usage(self) -> float:
        return self.alloc.used / self.alloc.usable

    def reset_prefix_cache(self) -> None:
        """Forget cached blocks that no request holds (for benchmarks that compare with / without hits)."""
        a = self.alloc
        for b in list(a.evictable):
            del a.cached[a.block_hash.pop(b)]
            a.free.append(b)
        a.evictable.clear()
