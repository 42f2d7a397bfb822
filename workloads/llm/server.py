"""An OpenAI-compatible HTTP server over the engine (aiohttp): /v1/completions, /v1/chat/completions (both with
server-sent-event streaming), /v1/models, /health and /metrics (Prometheus text: TTFT and inter-token latency
histograms, running / waiting requests, KV-block usage, prefix-cache hits, preemptions).

One asyncio task drives the engine: new requests are queued on the loop and added between steps, each `step()`
runs in a worker thread (the loop stays responsive), and each request's tokens go to its own asyncio queue.
Bad fields get a 400 naming the field (OpenAI's error shape: {"error": {"message", "type", "param"}}), before the
engine sees the request.

Models: `char` (the char model trained here, CPU friendly; text is ASCII characters) or a Llama shape of
`workloads.llm.engine.LLAMA_SHAPES` with random weights (text in, bytes as token ids; the output is random text).

    python -m workloads.llm.server --port 8000 --model char --device cpu
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from workloads.llm.engine import EngineConfig, EngineError, LLMEngine, Request, SamplingParams

TTFT_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
ITL_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0)


class Histogram:
    def __init__(self, name: str, help_: str, buckets: tuple[float, ...]) -> None:
        self.name, self.help, self.buckets = name, help_, buckets
        self.counts = [0] * len(buckets)
        self.sum, self.count = 0.0, 0

    def observe(self, v: float) -> None:
        self.sum += v
        self.count += 1
        for i, b in enumerate(self.buckets):
            if v <= b:
                self.counts[i] += 1

    def text(self, model: str) -> list[str]:
        lab = f'model_name="{model}"'
        out = [f"# HELP {self.name} {self.help}", f"# TYPE {self.name} histogram"]
        for b, c in zip(self.buckets, self.counts, strict=True):
            out.append(f'{self.name}_bucket{{{lab},le="{b}"}} {c}')
        out += [
            f'{self.name}_bucket{{{lab},le="+Inf"}} {self.count}',
            f"{self.name}_sum{{{lab}}} {self.sum}",
            f"{self.name}_count{{{lab}}} {self.count}",
        ]
        return out


class Tokenizer:
    """Characters (char model: ASCII, '?' for the rest) or UTF-8 bytes (Llama shapes) as token ids."""

    def __init__(self, kind: str) -> None:
        self.kind = kind

    def encode(self, text: str) -> list[int]:
        if self.kind == "char":
            return [ord(c) if ord(c) < 128 else ord("?") for c in text]
        return list(text.encode("utf-8"))

    def decode(self, tokens: list[int]) -> str:
        if self.kind == "char":
            return "".join(chr(t) for t in tokens)
        return bytes(t for t in tokens if t < 256).decode("utf-8", errors="replace")


class BadRequest(Exception):  # noqa: N818 - an HTTP 400 with the field it names
    def __init__(self, param: str, message: str) -> None:
        super().__init__(message)
        self.param = param


@dataclass
class Pending:
    prompt: list[int]
    params: SamplingParams
    queue: asyncio.Queue = field(default_factory=asyncio.Queue)
    request: Request | None = None


class Server:
    def __init__(self, engine: LLMEngine, model_name: str, tokenizer: Tokenizer) -> None:
        self.engine, self.model_name, self.tok = engine, model_name, tokenizer
        self.incoming: list[Pending] = []
        self.live: dict[str, Pending] = {}
        self.wake = asyncio.Event()
        self.ttft = Histogram("llm_time_to_first_token_seconds", "Time to first token", TTFT_BUCKETS)
        self.itl = Histogram("llm_inter_token_latency_seconds", "Gap between consecutive tokens", ITL_BUCKETS)
        self.e2e = Histogram("llm_e2e_request_latency_seconds", "Request latency", TTFT_BUCKETS)
        self.requests_ok = 0
        self.requests_bad = 0
        self.errors = 0
        self.task: asyncio.Task | None = None

    # ---- the engine loop

    async def loop(self) -> None:
        while True:
            if not self.incoming and not self.engine.has_unfinished():
                self.wake.clear()
                await self.wake.wait()
            for p in self.incoming:
                try:
                    p.request = self.engine.add_request(p.prompt, p.params)
                    self.live[p.request.id] = p
                except EngineError as e:
                    p.queue.put_nowait(e)
            self.incoming.clear()
            try:
                events = await asyncio.to_thread(self.engine.step)
            except Exception as e:  # noqa: BLE001 - a failed step fails the requests in flight, not the server
                self.errors += 1
                for p in list(self.live.values()):
                    p.queue.put_nowait(e)
                    if p.request is not None:
                        self.engine.abort(p.request)
                self.live.clear()
                continue
            for req, tok in events:
                p = self.live.get(req.id)
                if p is not None:
                    p.queue.put_nowait(tok)
            for req in self.engine.finished:
                p = self.live.pop(req.id, None)
                if p is not None:
                    self._observe(req)
                    p.queue.put_nowait(None)
            self.engine.finished.clear()

    def _observe(self, req: Request) -> None:
        self.ttft.observe(req.ttft)
        for x in req.itl:
            self.itl.observe(x)
        self.e2e.observe(req.token_times[-1] - req.arrival if req.token_times else 0.0)

    # ---- validation

    def _params(self, body: dict[str, Any], prompt_len: int) -> SamplingParams:
        model = body.get("model", self.model_name)
        if model != self.model_name:
            raise BadRequest("model", f"model {model!r}: unknown; this server serves {self.model_name!r}")
        mt = body.get("max_tokens", body.get("max_completion_tokens", 16))
        if isinstance(mt, bool) or not isinstance(mt, int) or mt < 1:
            raise BadRequest("max_tokens", f"max_tokens {mt!r}: allowed an integer >= 1")
        t = body.get("temperature", 1.0 if "top_p" in body else 0.0)
        if isinstance(t, bool) or not isinstance(t, int | float) or not 0 <= t <= 2:
            raise BadRequest("temperature", f"temperature {t!r}: allowed a number in [0, 2]")
        tp = body.get("top_p", 1.0)
        if isinstance(tp, bool) or not isinstance(tp, int | float) or not 0 < tp <= 1:
            raise BadRequest("top_p", f"top_p {tp!r}: allowed a number in (0, 1]")
        seed = body.get("seed")
        if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int) or seed < 0):
            raise BadRequest("seed", f"seed {seed!r}: allowed an integer >= 0")
        limit = self.engine.cfg.max_model_len
        if prompt_len >= limit:
            raise BadRequest(
                "prompt" if "prompt" in body else "messages",
                f"prompt of {prompt_len} tokens: allowed fewer than the context length {limit}",
            )
        return SamplingParams(max_tokens=mt, temperature=float(t), top_p=float(tp), seed=seed)

    def _prompt(self, body: dict[str, Any]) -> list[int]:
        p = body.get("prompt")
        if isinstance(p, str) and p:
            return self.tok.encode(p)
        if isinstance(p, list) and p and all(isinstance(t, int) and not isinstance(t, bool) for t in p):
            vocab = self.engine.m.vocab_size
            if not all(0 <= t < vocab for t in p):
                raise BadRequest("prompt", f"prompt token ids: allowed integers in [0, {vocab})")
            return p
        raise BadRequest("prompt", f"prompt {p!r:.40}: allowed a non-empty string or list of token ids")

    def _chat_prompt(self, body: dict[str, Any]) -> list[int]:
        msgs = body.get("messages")
        if not isinstance(msgs, list) or not msgs:
            raise BadRequest("messages", "messages: allowed a non-empty list of {role, content}")
        text = ""
        for i, m in enumerate(msgs):
            if not isinstance(m, dict) or m.get("role") not in ("system", "user", "assistant"):
                raise BadRequest(f"messages[{i}].role", f"messages[{i}]: role allowed system, user, assistant")
            if not isinstance(m.get("content"), str):
                raise BadRequest(f"messages[{i}].content", f"messages[{i}].content: allowed a string")
            text += f"{m['role']}: {m['content']}\n"
        return self.tok.encode(text + "assistant:")

    # ---- handlers

    def _bad(self, e: BadRequest) -> web.Response:
        self.requests_bad += 1
        err = {"error": {"message": str(e), "type": "invalid_request_error", "param": e.param, "code": None}}
        return web.json_response(err, status=400)

    async def _body(self, request: web.Request) -> dict[str, Any]:
        try:
            body = await request.json()
        except (json.JSONDecodeError, UnicodeDecodeError) as e:
            raise BadRequest("body", f"body: not JSON ({e})") from e
        if not isinstance(body, dict):
            raise BadRequest("body", "body: allowed a JSON object")
        s = body.get("stream", False)
        if not isinstance(s, bool):
            raise BadRequest("stream", f"stream {s!r}: allowed true or false")
        return body

    async def completions(self, request: web.Request) -> web.StreamResponse:
        return await self._serve(request, chat=False)

    async def chat(self, request: web.Request) -> web.StreamResponse:
        return await self._serve(request, chat=True)

    async def _serve(self, request: web.Request, chat: bool) -> web.StreamResponse:
        try:
            body = await self._body(request)
            prompt = self._chat_prompt(body) if chat else self._prompt(body)
            if max(prompt) >= self.engine.m.vocab_size:
                field_ = "messages" if chat else "prompt"
                vocab = self.engine.m.vocab_size
                raise BadRequest(field_, f"{field_}: encodes to token ids >= the vocabulary size {vocab}")
            params = self._params(body, len(prompt))
        except BadRequest as e:
            return self._bad(e)
        p = Pending(prompt, params)
        self.incoming.append(p)
        self.wake.set()
        rid = ("chatcmpl-" if chat else "cmpl-") + uuid.uuid4().hex[:16]
        created = int(time.time())
        obj = "chat.completion" if chat else "text_completion"
        if body.get("stream"):
            resp = web.StreamResponse(headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache"})
            await resp.prepare(request)
            first = True
            async for tok in self._tokens(p):
                if isinstance(tok, Exception):
                    break
                text = self.tok.decode([tok])
                if chat:
                    delta = {"content": text, **({"role": "assistant"} if first else {})}
                    choice = {"index": 0, "delta": delta, "finish_reason": None}
                else:
                    choice = {"index": 0, "text": text, "finish_reason": None}
                first = False
                chunk = {"id": rid, "object": obj + ".chunk" if chat else obj, "created": created}
                chunk.update(model=self.model_name, choices=[choice])
                await resp.write(f"data: {json.dumps(chunk)}\n\n".encode())
            fin = p.request.finish_reason if p.request else "error"
            end = {"index": 0, "finish_reason": fin, **({"delta": {}} if chat else {"text": ""})}
            chunk = {"id": rid, "object": obj + ".chunk" if chat else obj, "created": created, "model": self.model_name}
            await resp.write(f"data: {json.dumps({**chunk, 'choices': [end]})}\n\n".encode())
            await resp.write(b"data: [DONE]\n\n")
            await resp.write_eof()
            self.requests_ok += 1
            return resp
        toks: list[int] = []
        async for tok in self._tokens(p):
            if isinstance(tok, Exception):
                self.errors += 1
                return web.json_response({"error": {"message": str(tok), "type": "server_error"}}, status=500)
            toks.append(tok)
        req = p.request
        text = self.tok.decode(toks)
        choice: dict[str, Any] = {"index": 0, "finish_reason": req.finish_reason if req else "error"}
        choice.update({"message": {"role": "assistant", "content": text}} if chat else {"text": text})
        usage = {"prompt_tokens": len(prompt), "completion_tokens": len(toks), "total_tokens": len(prompt) + len(toks)}
        self.requests_ok += 1
        out = {"id": rid, "object": obj, "created": created, "model": self.model_name, "choices": [choice]}
        return web.json_response({**out, "usage": usage})

    async def _tokens(self, p: Pending):
        while True:
            tok = await p.queue.get()
            if tok is None:
                return
            yield tok
            if isinstance(tok, Exception):
                return

    async def health(self, request: web.Request) -> web.Response:
        return web.json_response({"status": "ok", "model": self.model_name})

    async def models(self, request: web.Request) -> web.Response:
        return web.json_response(
            {"object": "list", "data": [{"id": self.model_name, "object": "model", "owned_by": "ailab"}]}
        )

    async def metrics(self, request: web.Request) -> web.Response:
        e, lab = self.engine, f'model_name="{self.model_name}"'
        lines = []

        def gauge(name: str, help_: str, v: float, kind: str = "gauge") -> None:
            lines.extend([f"# HELP {name} {help_}", f"# TYPE {name} {kind}", f"{name}{{{lab}}} {v}"])

        gauge("llm_num_requests_running", "Requests in the running batch", len(e.running))
        gauge("llm_num_requests_waiting", "Requests queued", len(e.waiting) + len(self.incoming))
        gauge("llm_kv_cache_usage_ratio", "Fraction of KV blocks in use", e.kv_usage())
        gauge("llm_kv_cache_blocks_total", "KV blocks in the pool (usable)", e.alloc.usable)
        gauge("llm_kv_cache_blocks_used", "KV blocks held by requests", e.alloc.used)
        gauge("llm_prefix_cache_blocks", "Blocks registered in the prefix cache", len(e.alloc.cached))
        gauge("llm_prompt_tokens_total", "Prompt tokens admitted", e.stats.prompt_tokens, "counter")
        gauge("llm_prefix_cache_hit_tokens_total", "Prompt tokens served from the prefix cache",
              e.stats.cached_prompt_tokens, "counter")  # fmt: skip
        gauge("llm_generation_tokens_total", "Tokens generated", e.stats.generated_tokens, "counter")
        gauge("llm_preemptions_total", "Requests preempted (recompute)", e.stats.preemptions, "counter")
        gauge("llm_engine_steps_total", "Engine iterations", e.stats.steps, "counter")
        gauge("llm_requests_success_total", "Requests answered", self.requests_ok, "counter")
        gauge("llm_requests_invalid_total", "Requests refused with 400", self.requests_bad, "counter")
        gauge("llm_request_errors_total", "Requests failed by the engine", self.errors, "counter")
        for h in (self.ttft, self.itl, self.e2e):
            lines += h.text(self.model_name)
        return web.Response(text="\n".join(lines) + "\n", content_type="text/plain")

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_post("/v1/completions", self.completions)
        app.router.add_post("/v1/chat/completions", self.chat)
        app.router.add_get("/v1/models", self.models)
        app.router.add_get("/health", self.health)
        app.router.add_get("/metrics", self.metrics)

        async def start(_app):
            self.task = asyncio.create_task(self.loop())

        async def stop(_app):
            if self.task:
                self.task.cancel()

        app.on_startup.append(start)
        app.on_cleanup.append(stop)
        return app


def build_engine(model: str, device: str, config: EngineConfig, dtype: str = "bfloat16") -> tuple[LLMEngine, Tokenizer]:
    """The engine for `model` (char: the trained char model; else a Llama shape, random weights) on `device`."""
    if model == "char":
        from workloads.llm import charlm

        m, _ = charlm.load_or_train(device=device, log=lambda *a: None)
        return LLMEngine(m, config, name="char"), Tokenizer("char")
    from workloads.llm.engine import build_llama

    m = build_llama(model, device, dtype if device != "cpu" else "float32")
    return LLMEngine(m, config, name=model), Tokenizer("bytes")


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--model", default="char")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--max-model-len", type=int, default=512)
    ap.add_argument("--max-num-seqs", type=int, default=16)
    ap.add_argument("--block-size", type=int, default=16)
    ap.add_argument("--num-blocks", type=int, default=0)
    ap.add_argument("--no-prefix-caching", action="store_true")
    ap.add_argument("--threads", type=int, default=1)
    a = ap.parse_args(argv)
    import torch

    if a.device == "cpu":
        torch.set_num_threads(a.threads)
    cfg = EngineConfig(
        block_size=a.block_size,
        num_blocks=a.num_blocks,
        max_num_seqs=a.max_num_seqs,
        max_model_len=a.max_model_len,
        max_num_batched_tokens=max(256, a.block_size),
        prefix_caching=not a.no_prefix_caching,
    )
    engine, tok = build_engine(a.model, a.device, cfg)
    web.run_app(Server(engine, a.model, tok).app(), host=a.host, port=a.port, print=None)


if __name__ == "__main__":
    main()
