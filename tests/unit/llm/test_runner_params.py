"""The d79/d81/d82 runners reject bad parameters before building a model, naming the field, value and allowed."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from ailab.contract import Context
from ailab.curriculum import catalogue
from ailab.runner import load_runner
from workloads.llm import charlm
from workloads.llm.model import ConfigError

SMALL = {"model": {"d_model": 32, "n_layers": 1, "n_heads": 2}}


def ctx(params: dict, tmp_path: Path, device: str = "cpu") -> Context:
    return Context("test", {**SMALL, **params}, device, True, tmp_path)


@pytest.mark.parametrize(
    ("runner", "params", "message"),
    [
        ("workloads.llm.exp_kv:baseline", {"prompt_lens": [0], "new_tokens": 4, "repeats": 1},
         "params.prompt_lens [0]: allowed a non-empty list of integers >= 1"),
        ("workloads.llm.exp_kv:baseline", {"prompt_lens": [8], "new_tokens": 4, "repeats": 1, "model": {"heads": 2}},
         "model.heads 2: allowed no such field"),
        ("workloads.llm.exp_kv:hit_rate_latency", {"shared_prefix": [1.5]},
         "params.shared_prefix [1.5]: allowed a non-empty list of numbers 0..1"),
        ("workloads.llm.exp_prompt:with_without", {"repeats": "often"},
         "params.repeats 'often': allowed a non-empty list of numbers 0..1"),
        ("workloads.llm.exp_long:chunked", {"length": 64, "chunks": [True], "repeats": 1},
         "params.chunks [True]: allowed a non-empty list of integers >= 1 or null"),
        ("workloads.llm.exp_long:lengths", {"lengths": [64], "new_tokens": 2, "repeats": 1},
         "params.chunk None: allowed a value (missing from the binding)"),
    ],
)  # fmt: skip
def test_bad_params_are_rejected(tmp_path: Path, runner: str, params: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=re.escape(message)):
        load_runner(runner)(ctx(params, tmp_path))


def test_cuda_values_replace_cpu_values_only_on_cuda(tmp_path: Path) -> None:
    from workloads.llm import params

    p = {"length": 1, "cuda_length": 2}
    assert params.integer(ctx(p, tmp_path), "length") == 1
    assert params.integer(ctx(p, tmp_path, "cuda"), "length") == 2


def test_gpu_memory_runners_skip_on_cpu(tmp_path: Path) -> None:
    from ailab.contract import Skip

    for ref in ("workloads.llm.exp_kv:memory_curve", "workloads.llm.exp_long:memory"):
        with pytest.raises(Skip, match="needs a CUDA GPU"):
            load_runner(ref)(ctx({}, tmp_path))


def test_every_llm_binding_runs_at_its_quick_size_on_a_small_model(tmp_path: Path) -> None:
    """d79.e1 and d82.e1 through their bound quick params, model shrunk so the test stays fast (no training)."""
    for eid in ("d79.e1", "d82.e1"):
        b = catalogue().experiments[eid].binding
        out = load_runner(b.runner)(ctx({**b.params, **b.quick, **SMALL}, tmp_path))
        assert out.tables and all(t.rows for t in out.tables)


def test_char_corpus_split_is_fixed_and_ascii() -> None:
    train, held = charlm.corpus()
    assert len(train) > 300_000 and len(held) > 10_000
    assert max(train) < 128 and max(held) < 128
    assert charlm.decode(charlm.encode("KV cache")) == "KV cache"
