"""A Triton model repository of Python-backend tokenizer models, each config generated as Triton's `ModelConfig`.

One `TokenizerModel` spec per model: which hot-loop implementation it runs, how many CPU instances, the batch size it
accepts. `validate` refuses what Triton or the model would reject, naming the model and the field, before anything is
written.
"""

from __future__ import annotations

import shutil
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from workloads.backends.hotloop.ngram import IMPLS

HERE = Path(__file__).parent
MODEL_PY = HERE / "models" / "tokenizer" / "model.py"
NGRAM_PY = HERE / "hotloop" / "ngram.py"


class SpecError(ValueError):
    """A tokenizer model spec Triton or the model would reject; names the model and the field."""


@dataclass(frozen=True)
class TokenizerModel:
    name: str
    impl: str = "python"  # hot-loop implementation: python | numba | cython | cpp
    instances: int = 1  # CPU instances (one triton_python_backend_stub process each)
    max_batch_size: int = 16
    seq_len: int = 256  # IDS is padded/truncated to this many tokens
    n_max: int = 3  # n-grams of 1..n_max tokens
    buckets: int = 4096  # hashed feature counters per text
    dynamic_batching: bool = False


def validate(m: TokenizerModel) -> None:
    w = f"model {m.name!r}"
    if not m.name or "/" in m.name:
        raise SpecError(f"{w}: name must be a non-empty directory name")
    if m.impl not in IMPLS:
        raise SpecError(f"{w}: impl {m.impl!r}: allowed {', '.join(IMPLS)}")
    for field, value, lo in (
        ("instances", m.instances, 1),
        ("max_batch_size", m.max_batch_size, 1),
        ("seq_len", m.seq_len, 1),
        ("n_max", m.n_max, 1),
        ("buckets", m.buckets, 1),
    ):
        if value < lo:
            raise SpecError(f"{w}: {field} {value}: must be >= {lo}")


def to_config(m: TokenizerModel, build_dir: Path | None) -> object:
    """The spec as a `ModelConfig` message (tritonclient's copy of Triton's model_config.proto)."""
    from tritonclient.grpc import model_config_pb2 as mc

    cfg = mc.ModelConfig(name=m.name, backend="python", max_batch_size=m.max_batch_size)
    cfg.input.add(name="TEXT", data_type=mc.TYPE_STRING, dims=[1])
    cfg.output.add(name="IDS", data_type=mc.TYPE_INT64, dims=[m.seq_len])
    cfg.output.add(name="LENGTH", data_type=mc.TYPE_INT32, dims=[1])
    cfg.output.add(name="FEATURES", data_type=mc.TYPE_FP32, dims=[m.buckets])
    cfg.instance_group.add(count=m.instances, kind=mc.ModelInstanceGroup.KIND_CPU)
    if m.dynamic_batching:
        cfg.dynamic_batching.SetInParent()
    params = {
        "impl": m.impl,
        "build_dir": str(build_dir or ""),
        "seq_len": str(m.seq_len),
        "n_max": str(m.n_max),
        "buckets": str(m.buckets),
    }
    for k, v in params.items():
        cfg.parameters[k].string_value = v
    return cfg


def build_repository(
    models: Sequence[TokenizerModel], root: Path, tokenizer_json: Path, build_dir: Path | None
) -> Path:
    """Write <root>/<name>/{config.pbtxt, 1/model.py, 1/ngram.py, 1/tokenizer.json}; returns root."""
    from google.protobuf import text_format

    names = [m.name for m in models]
    if len(set(names)) != len(names):
        raise SpecError(f"models: names {names} must be unique")
    for m in models:
        validate(m)
        if m.impl in ("cython", "cpp") and build_dir is None:
            raise SpecError(f"model {m.name!r}: impl {m.impl!r} needs the compiled extensions (build_dir)")
    if not tokenizer_json.is_file():
        raise SpecError(f"tokenizer_json {str(tokenizer_json)!r} is not a file (train one with corpus.train)")
    if root.exists():
        shutil.rmtree(root)
    for m in models:
        d = root / m.name
        (d / "1").mkdir(parents=True)
        (d / "config.pbtxt").write_text(text_format.MessageToString(to_config(m, build_dir)))
        for src in (MODEL_PY, NGRAM_PY, tokenizer_json):
            shutil.copy2(src, d / "1" / src.name)
    return root
