"""Serve tokenizer models on a tritonserver of the experiment's own and load them (the serving area's generator)."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ailab.contract import Context
from workloads.backends import build, corpus
from workloads.backends.repository import TokenizerModel, build_repository
from workloads.serving import harness


@dataclass
class Served(harness.Served):
    """The serving area's handle, plus the tokenizer file the models serve and the compiled hot loops' folder."""

    tokenizer_json: Path | None = None
    build_dir: Path | None = None


def text_batch(texts: Sequence[str]) -> dict[str, np.ndarray]:
    """The model's input for a batch of texts: TEXT, BYTES [B, 1]."""
    return {"TEXT": np.array([[t.encode("utf-8")] for t in texts], dtype=np.object_)}


@contextmanager
def serve(
    ctx: Context,
    models: Sequence[TokenizerModel],
    workdir: Path,
    opt: str = "-O3",
    tokenizer_json: Path | None = None,
) -> Iterator[Served]:
    """Train the tokenizer (unless given one: training is not deterministic, so a run compares against the file it
    serves), build the compiled hot loops if a model needs them, start tritonserver, stop it on exit."""
    tok = tokenizer_json or corpus.train(workdir / "tokenizer" / "tokenizer.json")
    bdir = build.build(opt) if any(m.impl in ("cython", "cpp") for m in models) else None
    repo = build_repository(models, workdir / "repository", tok, bdir)
    opts = {"triton.model_repository": repo, "triton.model_control_mode": "none"}
    with ctx.platform(services=["triton"], state_dir=workdir / "state", options=opts) as p:
        served = Served(p, repo, tok, bdir)
        from workloads.serving.client import Client

        warm = text_batch(corpus.texts(4, 32))
        with Client(served.address("http"), "http", timeout_s=60) as c:
            for m in models:
                for _ in range(10):  # first requests pay lazy imports and allocations; d07.e2 measures those
                    c.infer(m.name, warm)
        yield served


def load(served: Served, model: str, texts: Sequence[str], **kw: Any) -> tuple[Any, float]:
    """One closed- or open-loop run of the lab's generator (HTTP: it carries BYTES tensors), and server CPU (cores)."""
    import asyncio

    from workloads.serving import harness, loadgen
    from workloads.serving.client import AsyncClient

    spec = loadgen.LoadSpec(
        url=served.address("http"),
        model=model,
        protocol="http",
        metrics_url=served.metrics_url,
        inputs=text_batch(texts),
        batch=len(texts),
        **kw,
    )

    async def go() -> Any:
        # BYTES (text) tensors: the generator's raw HTTP client sends numeric tensors only, so the texts go through
        # tritonclient's asyncio HTTP client (the one these results were measured with before the raw client came)
        client = AsyncClient(
            spec.url, "http", timeout_s=spec.timeout_s, retries=spec.retries, backoff_s=spec.backoff_s or 0.05
        )
        return await loadgen.run_async(spec, client)

    c0 = harness.cpu_s(served.pid)
    res = asyncio.run(go())
    total = res.window_s + spec.warmup_s
    return res, (harness.cpu_s(served.pid) - c0) / total if total > 0 else 0.0
