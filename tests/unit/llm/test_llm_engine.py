"""The paged-KV continuous-batching engine on CPU (fp32, tiny random models): its greedy output equals Hugging Face
`generate` and the contiguous-cache decoder token for token, under chunked prefill, preemption and prefix caching.
Nothing is mocked; nothing is downloaded (weights are random from a seed)."""

from __future__ import annotations

import pytest
import torch

from workloads.llm.engine import EngineConfig, EngineError, LLMEngine, SamplingParams, build_llama

torch.set_num_threads(1)


@pytest.fixture(scope="module")
def llama():
    return build_llama("llama-tiny", seed=0)


@pytest.fixture(scope="module")
def prompts():
    g = torch.Generator().manual_seed(1)
    return [torch.randint(1, 97, (n,), generator=g).tolist() for n in (5, 17, 33, 40, 12, 25)]


def _engine(model, **kw):
    base = dict(block_size=4, max_model_len=128, max_num_seqs=8, max_num_batched_tokens=16)
    return LLMEngine(model, EngineConfig(**{**base, **kw}))


def test_greedy_equals_hf_generate_token_for_token(llama, prompts):
    eng = _engine(llama)
    reqs = eng.generate(prompts, SamplingParams(max_tokens=24))
    for p, r in zip(prompts, reqs, strict=True):
        ref = llama.generate(torch.tensor([p]), max_new_tokens=24, do_sample=False)[0, len(p) :].tolist()
        assert r.output == ref, f"prompt of {len(p)} tokens"
        assert r.finish_reason == "length"
    # the batch really was mixed: several requests per step, prompts split into chunks of <= 16 tokens
    assert eng.stats.steps < sum(24 + -(-len(p) // 16) for p in prompts)


def test_paged_cache_equals_contiguous_cache_on_the_char_model(prompts):
    from workloads.llm.generate import generate
    from workloads.llm.kvcache import FullCache
    from workloads.llm.model import ModelConfig, build

    cm = build(ModelConfig(vocab_size=128, d_model=64, n_layers=2, n_heads=4))
    eng = LLMEngine(cm, EngineConfig(block_size=8, max_model_len=256, max_num_batched_tokens=32))
    for p, r in zip(prompts, eng.generate(prompts, SamplingParams(max_tokens=20)), strict=True):
        assert r.output == generate(cm, p, 20, FullCache(cm.cfg, capacity=len(p) + 20)).tokens


def test_preempted_requests_resume_to_the_same_output(llama, prompts):
    ref = _engine(llama).generate(prompts, SamplingParams(max_tokens=30))
    tight = _engine(llama, num_blocks=30)  # 29 usable blocks of 4 positions: not enough for all six at once
    out = tight.generate(prompts, SamplingParams(max_tokens=30))
    assert tight.stats.preemptions > 0
    assert any(r.preemptions for r in out)
    assert [r.output for r in out] == [r.output for r in ref]
    assert tight.alloc.used == 0  # every block came back


def test_prefix_cache_hits_give_the_same_tokens(llama, prompts):
    shared = prompts[3]  # 40 tokens = 10 full blocks shared by every prompt
    ps = [shared + p for p in prompts]
    cold = _engine(llama, prefix_caching=False)
    warm = _engine(llama)
    a = [cold.generate([p], SamplingParams(max_tokens=10))[0] for p in ps]
    b = [warm.generate([p], SamplingParams(max_tokens=10))[0] for p in ps]
    assert [x.output for x in a] == [y.output for y in b]
    assert b[0].cached_tokens == 0 and all(y.cached_tokens >= 40 for y in b[1:])
    assert cold.stats.cached_prompt_tokens == 0 and warm.stats.cached_prompt_tokens >= 200


def test_cached_blocks_are_reclaimed_when_the_pool_runs_out(llama, prompts):
    eng = _engine(llama, num_blocks=24)
    for p in prompts:  # each finished request leaves its full blocks cached; later ones must evict them
        eng.generate([p], SamplingParams(max_tokens=30))
    assert eng.alloc.used == 0
    assert len(eng.alloc.cached) <= 23


def test_top_p_sampling_is_seeded_and_restricted(llama, prompts):
    eng = _engine(llama)
    sp = SamplingParams(max_tokens=12, temperature=1.0, top_p=0.9, seed=3)
    a, b = eng.generate([prompts[0], prompts[0]], sp)
    assert a.output == b.output  # same seed, same tokens
    c = eng.generate([prompts[0]], SamplingParams(max_tokens=12, temperature=1.0, top_p=0.9, seed=4))[0]
    greedy = eng.generate([prompts[0]], SamplingParams(max_tokens=12))[0]
    assert c.output != a.output or a.output != greedy.output
    # top_p tiny keeps only the most likely token: equals greedy
    tiny = eng.generate([prompts[0]], SamplingParams(max_tokens=12, temperature=1.0, top_p=1e-6, seed=5))[0]
    assert tiny.output == greedy.output


def test_stop_token_ends_a_request(llama, prompts):
    eng = _engine(llama)
    greedy = eng.generate([prompts[1]], SamplingParams(max_tokens=12))[0].output
    stop = greedy[4]
    r = eng.generate([prompts[1]], SamplingParams(max_tokens=12, stop_token_ids=(stop,)))[0]
    assert r.finish_reason == "stop" and r.output == greedy[: greedy.index(stop) + 1]


def test_context_length_caps_generation(llama):
    eng = _engine(llama, max_model_len=32)
    r = eng.generate([[1] * 30], SamplingParams(max_tokens=10))[0]
    assert len(r.output) == 2 and r.finish_reason == "length"


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"max_tokens": -1}, "max_tokens"),
        ({"max_tokens": 0}, "max_tokens"),
        ({"top_p": 0.0}, "top_p"),
        ({"top_p": 1.5}, "top_p"),
        ({"temperature": -0.1}, "temperature"),
    ],
)
def test_bad_sampling_params_name_the_field(kwargs, field):
    with pytest.raises(EngineError, match=field):
        SamplingParams(**kwargs)


def test_bad_prompts_are_refused_before_queueing(llama):
    eng = _engine(llama, max_model_len=32)
    for prompt, match in (([], "prompt"), ([1] * 32, "prompt length 32"), ([1, 500], "prompt token 500")):
        with pytest.raises(EngineError, match=match):
            eng.add_request(prompt)
    assert not eng.has_unfinished()
    with pytest.raises(EngineError, match="cuda_graphs"):
        EngineConfig(cuda_graphs=True)
    with pytest.raises(EngineError, match="model 'gpt'"):
        build_llama("gpt")


def test_a_step_mixes_prefill_chunks_with_decode_tokens(llama, prompts):
    class Recording(LLMEngine):
        def _schedule(self):
            s = super()._schedule()
            self.log.append([(r.id, n, r.num_computed + n <= len(r.prompt)) for r, n in s])
            return s

    eng = Recording(llama, EngineConfig(block_size=4, max_model_len=128, max_num_batched_tokens=8))
    eng.log = []
    eng.add_request(prompts[0], SamplingParams(max_tokens=12))  # 5 tokens: prefilled in the first step
    eng.add_request(prompts[3], SamplingParams(max_tokens=4))  # 40 tokens: chunks of <= 7 beside the decode
    while eng.has_unfinished():
        eng.step()
    assert all(sum(n for _, n, _ in step) <= 8 for step in eng.log)  # the token budget holds
    mixed = [s for s in eng.log if any(n == 1 and not pre for _, n, pre in s) and any(pre and n > 1 for _, n, pre in s)]
    assert mixed, "no step held a decode token and a prefill chunk together"
