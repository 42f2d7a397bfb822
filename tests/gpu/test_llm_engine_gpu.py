"""On a GPU host: the engine's Triton paged decode kernel and its CUDA-graph decode give the same greedy tokens as
SDPA over gathered blocks (tiny fp32 Llama, seconds). Skipped where there is no NVIDIA GPU (CI)."""

from __future__ import annotations

import pytest

from ailab import host

pytestmark = [pytest.mark.gpu, pytest.mark.skipif(not host.gpus(), reason="no NVIDIA GPU on this host")]


def test_triton_and_cuda_graphs_match_sdpa_on_cuda() -> None:
    torch = pytest.importorskip("torch")
    if not torch.cuda.is_available():
        pytest.skip("torch has no CUDA here")
    from workloads.llm.engine import EngineConfig, LLMEngine, SamplingParams, build_llama

    m = build_llama("llama-tiny", "cuda", "float32")
    g = torch.Generator().manual_seed(1)
    prompts = [torch.randint(1, 256, (n,), generator=g).tolist() for n in (5, 17, 33, 40, 70)]
    sp = SamplingParams(max_tokens=24)
    base = dict(block_size=16, max_model_len=256, max_num_seqs=8, max_num_batched_tokens=64)
    ref = LLMEngine(m, EngineConfig(**base)).generate(prompts, sp)
    tri = LLMEngine(m, EngineConfig(**base, attention="triton")).generate(prompts, sp)
    eng = LLMEngine(m, EngineConfig(**base, attention="triton", cuda_graphs=True))
    gra = eng.generate(prompts, sp)
    assert eng.stats.graph_steps > 0
    assert [r.output for r in tri] == [r.output for r in ref]
    assert [r.output for r in gra] == [r.output for r in ref]
    hf = [m.generate(torch.tensor([p], device="cuda"), max_new_tokens=24, do_sample=False)[0, len(p) :].tolist()
          for p in prompts]  # fmt: skip
    assert [r.output for r in gra] == hf
