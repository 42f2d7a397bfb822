"""The d79/d81/d82 runners called as the lab calls them (a keyword Context and typed params): bad parameters are
rejected when the catalogue loads, naming the field; CUDA values replace CPU ones only on CUDA; quick params run."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from ailab.contract import Context, Skip
from ailab.contract.params import ParamsError, validate
from ailab.contract.paths import REPO_ROOT
from ailab.curriculum.loader import check_params, runner_params_model
from ailab.runner import load_runner
from workloads.llm import charlm
from workloads.llm.experiments.common import LLMParams, build_model
from workloads.llm.experiments.kv_cache import BaselineParams, HitRateParams, MemoryCurveParams, memory_curve
from workloads.llm.experiments.long_context import ChunkedParams, LengthsParams, MemoryParams, memory
from workloads.llm.experiments.prompt_cache import WithWithoutParams
from workloads.llm.model import ConfigError

BINDINGS = yaml.safe_load((REPO_ROOT / "workloads/llm/bindings.yaml").read_text(encoding="utf-8"))
SMALL = {"model": {"d_model": 32, "n_layers": 1, "n_heads": 2}}
D81 = {k: v for k, v in BINDINGS["d81.e4"]["params"].items() if k != "repeats"}


def ctx(tmp_path: Path, device: str = "cpu", exp_id: str = "test") -> Context:
    return Context(experiment_id=exp_id, device=device, quick=True, workdir=tmp_path)


@pytest.mark.parametrize(
    ("model", "values", "message"),
    [
        (BaselineParams, {"prompt_lens": [0], "new_tokens": 4, "repeats": 1},
         "field prompt_lens.0 = 0: Input should be greater than or equal to 1"),
        (BaselineParams, {"prompt_lens": [8], "new_tokens": 4, "repeats": 1, "model": {"heads": 2}},
         "field model.heads: unknown parameter"),
        (BaselineParams, {"prompt_lens": [8], "new_tokens": 4, "repeats": 1, "model": {"d_model": 30, "n_heads": 4}},
         "field model = {'d_model': 30, 'n_heads': 4}: d_model 30 must be a multiple of n_heads (4)"),
        (HitRateParams, {"shared_prefix": [1.5], "requests": 1, "prefix_len": 0, "suffix_len": 1, "new_tokens": 2,
                         "window": 4, "block_size": 4},
         "field shared_prefix.0 = 1.5: Input should be less than or equal to 1"),
        (WithWithoutParams, {**D81, "repeats": "often"}, "field repeats = 'often': Input should be a valid list"),
        (ChunkedParams, {"length": 64, "chunks": [True], "repeats": 1},
         "field chunks.0 = True: Input should be a valid integer"),
        (LengthsParams, {"lengths": [64], "new_tokens": 2, "repeats": 1, "window": 8},
         ("field chunk: required, no value given",)),
        (MemoryCurveParams, {"lengths": [2, 64], "windows": [None], "chunk": 8, "new_tokens": 4},
         "lengths [2] are shorter than new_tokens (4)"),
    ],
)  # fmt: skip
def test_bad_params_name_the_field(model: type, values: dict, message: str | tuple[str, ...]) -> None:
    with pytest.raises(ParamsError) as err:
        validate(model, values)
    for part in (message,) if isinstance(message, str) else message:
        assert part in str(err.value)


def test_a_bad_binding_fails_at_load_naming_the_field() -> None:
    b = BINDINGS["d79.e1"]
    assert "field new_tokens = 1: Input should be greater than or equal to 2" in check_params(
        b["runner"], b["params"], {"new_tokens": 1}
    )
    assert "field cuda_prompt_len: unknown parameter" in check_params(b["runner"], b["params"], {"cuda_prompt_len": 8})


def test_every_binding_of_the_area_fits_its_runner() -> None:
    for exp_id, b in BINDINGS.items():
        assert check_params(b["runner"], b["params"], b.get("quick", {})) is None, exp_id


def test_cuda_values_replace_cpu_values_only_on_cuda() -> None:
    p = validate(ChunkedParams, {"length": 1, "cuda_length": 2, "chunks": [None], "repeats": 1})
    assert p.for_device("cpu").length == 1
    assert p.for_device("cuda").length == 2
    no_cuda_value = validate(MemoryParams, {"lengths": [8], "chunk": 4, "window": 4, **SMALL})
    assert no_cuda_value.for_device("cuda").model == no_cuda_value.model  # no cuda_model: the CPU model on CUDA too


def test_a_cuda_field_needs_its_cpu_field() -> None:
    with pytest.raises(TypeError, match="cuda_width has no CPU field 'width'"):

        class Broken(LLMParams):
            cuda_width: int | None = None


def test_float16_is_refused_on_cpu(tmp_path: Path) -> None:
    p = validate(MemoryParams, {"lengths": [8], "chunk": 4, "window": 4, "model": {"dtype": "float16"}})
    with pytest.raises(ConfigError, match=r"params\.model\.dtype 'float16': allowed float32 or bfloat16 on CPU"):
        build_model(ctx(tmp_path), p)


def test_gpu_memory_runners_skip_on_cpu(tmp_path: Path) -> None:
    p = validate(MemoryCurveParams, {"lengths": [8], "windows": [None], "chunk": 4, "new_tokens": 2})
    with pytest.raises(Skip, match="needs a CUDA GPU"):
        memory_curve(ctx(tmp_path), p)
    with pytest.raises(Skip, match="needs a CUDA GPU"):
        memory(ctx(tmp_path), validate(MemoryParams, {"lengths": [8], "chunk": 4, "window": 4}))


@pytest.mark.parametrize("exp_id", ["d79.e1", "d81.e2", "d82.e1"])
def test_quick_params_run_on_a_small_model(tmp_path: Path, exp_id: str) -> None:
    """Bound quick params, model shrunk so the test stays fast (no char-model training)."""
    b = BINDINGS[exp_id]
    typed: Any = validate(runner_params_model(b["runner"]), {**b["params"], **b["quick"], **SMALL})
    out = load_runner(b["runner"])(ctx(tmp_path, exp_id=exp_id), typed)
    assert out.tables and all(t.rows for t in out.tables)


def test_char_corpus_split_is_fixed_and_ascii() -> None:
    train, held = charlm.corpus()
    assert len(train) > 300_000 and len(held) > 10_000
    assert max(train) < 128 and max(held) < 128
    assert charlm.decode(charlm.encode("KV cache")) == "KV cache"
