"""The OpenAI-compatible server over the engine, served for real by aiohttp on a kernel-chosen loopback port, with a
tiny random-weight Llama on CPU (nothing mocked, nothing downloaded)."""

from __future__ import annotations

import asyncio
import json

import pytest
import torch
from aiohttp.test_utils import TestClient, TestServer

from workloads.llm.engine import EngineConfig, LLMEngine, build_llama
from workloads.llm.server import Server, Tokenizer

pytestmark = pytest.mark.integration
torch.set_num_threads(1)


def _server(max_model_len: int = 64) -> Server:
    cfg = EngineConfig(block_size=4, max_model_len=max_model_len, max_num_seqs=4, max_num_batched_tokens=32)
    return Server(LLMEngine(build_llama("llama-tiny"), cfg), "llama-tiny", Tokenizer("bytes"))


def _run(coro_fn, srv: Server):
    async def go():
        async with TestClient(TestServer(srv.app())) as client:
            return await coro_fn(client)

    return asyncio.run(go())


def test_completions_chat_stream_and_metrics():
    srv = _server()

    async def scenario(c):
        assert (await (await c.get("/health")).json())["status"] == "ok"
        body = {"model": "llama-tiny", "prompt": [5, 6, 7, 8, 9], "max_tokens": 6}
        r = await c.post("/v1/completions", json=body)
        assert r.status == 200
        one = await r.json()
        assert one["usage"] == {"prompt_tokens": 5, "completion_tokens": 6, "total_tokens": 11}
        assert one["choices"][0]["finish_reason"] == "length"
        # concurrent requests share the batch and still give the same greedy tokens
        rs = await asyncio.gather(*[c.post("/v1/completions", json=body) for _ in range(3)])
        texts = {(await x.json())["choices"][0]["text"] for x in rs}
        assert texts == {one["choices"][0]["text"]}
        # streaming: one SSE chunk per token, a final chunk with the reason, then [DONE]
        r = await c.post("/v1/completions", json={**body, "stream": True})
        assert r.headers["Content-Type"].startswith("text/event-stream")
        raw = (await r.read()).decode()
        events = [e[len("data: ") :] for e in raw.strip().split("\n\n")]
        assert events[-1] == "[DONE]"
        chunks = [json.loads(e) for e in events[:-1]]
        assert len(chunks) == 7 and chunks[-1]["choices"][0]["finish_reason"] == "length"
        assert "".join(ch["choices"][0]["text"] for ch in chunks) == one["choices"][0]["text"]
        chat = {"model": "llama-tiny", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 3}
        r = await c.post("/v1/chat/completions", json=chat)
        msg = (await r.json())["choices"][0]["message"]
        assert r.status == 200 and msg["role"] == "assistant"
        r = await c.post("/v1/chat/completions", json={**chat, "stream": True})
        raw = (await r.read()).decode()
        assert raw.rstrip().endswith("data: [DONE]") and '"delta"' in raw
        return await (await c.get("/metrics")).text()

    text = _run(scenario, srv)
    assert 'llm_time_to_first_token_seconds_count{model_name="llama-tiny"} 7' in text
    assert "llm_inter_token_latency_seconds_bucket" in text
    assert 'llm_num_requests_running{model_name="llama-tiny"} 0' in text
    assert "llm_kv_cache_usage_ratio" in text and "llm_prefix_cache_hit_tokens_total" in text
    # repeated prompts were served from the prefix cache
    hits = [ln for ln in text.splitlines() if ln.startswith("llm_prefix_cache_hit_tokens_total{")]
    assert float(hits[0].split()[-1]) > 0


@pytest.mark.parametrize(
    ("patch", "param"),
    [
        ({"max_tokens": -1}, "max_tokens"),
        ({"model": "gpt-4"}, "model"),
        ({"prompt": list(range(1, 65))}, "prompt"),
        ({"top_p": 0}, "top_p"),
        ({"top_p": 1.5}, "top_p"),
        ({"temperature": -1}, "temperature"),
        ({"prompt": ""}, "prompt"),
        ({"stream": "yes"}, "stream"),
    ],
)
def test_bad_fields_get_a_400_naming_the_field(patch, param):
    srv = _server(max_model_len=64)

    async def scenario(c):
        r = await c.post("/v1/completions", json={"model": "llama-tiny", "prompt": [1, 2], "max_tokens": 2, **patch})
        return r.status, await r.json()

    status, body = _run(scenario, srv)
    assert status == 400
    assert body["error"]["param"] == param and param in body["error"]["message"]
    assert not srv.engine.has_unfinished() and srv.engine.stats.steps == 0


def test_chat_messages_are_checked():
    srv = _server()

    async def scenario(c):
        r = await c.post("/v1/chat/completions", json={"messages": [{"role": "robot", "content": "x"}]})
        return r.status, await r.json()

    status, body = _run(scenario, srv)
    assert status == 400 and body["error"]["param"] == "messages[0].role"
