"""The lab's OpenAI-compatible LLM server (workloads/llm/server.py: the paged-KV, continuous-batching engine behind
/v1/completions, /v1/chat/completions, /health and /metrics). On a CPU host it serves the char model trained here
(trained on first start and cached under .lab/llm/, hence the long readiness timeout); options pick another model
(`llm.model`: char or a Llama shape of workloads.llm.engine.LLAMA_SHAPES, random weights), `llm.device`,
`llm.prefix_caching` (default true) and `llm.max_model_len`."""

from __future__ import annotations

import sys

from ailab.contract.paths import REPO_ROOT
from ailab.local.registry import PlatformError
from ailab.local.spec import HOST, PlatformContext, ServiceSpec

DEFAULT_PORT = 8000
MODELS = ("char", "llama-tiny", "llama-1b", "llama-8b")


def spec(ctx: PlatformContext) -> ServiceSpec:
    o = ctx.options
    model = o.get("llm.model", "char")
    if model not in MODELS:
        raise PlatformError(f"service llm: option llm.model {model!r}: allowed {', '.join(MODELS)}")
    device = o.get("llm.device", "cpu")
    if device not in ("cpu", "cuda"):
        raise PlatformError(f"service llm: option llm.device {device!r}: allowed cpu, cuda")
    max_len = o.get("llm.max_model_len", 512)
    if isinstance(max_len, bool) or not isinstance(max_len, int) or max_len < 2:
        raise PlatformError(f"service llm: option llm.max_model_len {max_len!r}: allowed an integer >= 2")
    port = ctx.port("llm.http", DEFAULT_PORT)
    argv = [sys.executable, "-m", "workloads.llm.server", f"--port={port}", f"--model={model}"]
    argv += [f"--device={device}", f"--max-model-len={max_len}"]
    if not o.get("llm.prefix_caching", True):
        argv.append("--no-prefix-caching")
    return ServiceSpec(
        name="llm",
        argv=argv,
        ports={"http": port},
        ready=f"http://{HOST}:{port}/health",
        log=ctx.log_path("llm"),
        cwd=REPO_ROOT,
        ready_timeout_s=900.0 if model == "char" else 300.0,
        info={"model": model, "device": device, "openai_base": f"http://{HOST}:{port}/v1"},
    )
