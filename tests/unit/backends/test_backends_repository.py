"""Tokenizer model repository: configs are Triton's ModelConfig (read back from config.pbtxt), bad specs are refused
naming the model and the field before anything is written."""

from __future__ import annotations

from pathlib import Path

import pytest
from google.protobuf import text_format
from tritonclient.grpc import model_config_pb2 as mc

from workloads.backends import corpus
from workloads.backends.repository import SpecError, TokenizerModel, build_repository


@pytest.fixture(scope="module")
def tokenizer_json(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return corpus.train(tmp_path_factory.mktemp("tok") / "tokenizer.json")


def test_repository_layout_and_config(tmp_path: Path, tokenizer_json: Path) -> None:
    models = [TokenizerModel("tok_py"), TokenizerModel("tok_cpp", impl="cpp", instances=3, seq_len=64, buckets=512)]
    root = build_repository(models, tmp_path / "repo", tokenizer_json, build_dir=tmp_path / "ext")
    assert sorted(p.name for p in (root / "tok_cpp" / "1").iterdir()) == ["model.py", "ngram.py", "tokenizer.json"]
    cfg = text_format.Parse((root / "tok_cpp" / "config.pbtxt").read_text(), mc.ModelConfig())
    assert (cfg.name, cfg.backend, cfg.max_batch_size) == ("tok_cpp", "python", 16)
    assert [(t.name, mc.DataType.Name(t.data_type), list(t.dims)) for t in cfg.input] == [("TEXT", "TYPE_STRING", [1])]
    assert [(t.name, list(t.dims)) for t in cfg.output] == [("IDS", [64]), ("LENGTH", [1]), ("FEATURES", [512])]
    assert cfg.instance_group[0].count == 3 and cfg.instance_group[0].kind == mc.ModelInstanceGroup.KIND_CPU
    assert cfg.parameters["impl"].string_value == "cpp"
    assert cfg.parameters["build_dir"].string_value == str(tmp_path / "ext")
    assert not cfg.HasField("dynamic_batching")


@pytest.mark.parametrize(
    ("model", "message"),
    [
        (TokenizerModel("t", impl="rust"), r"model 't': impl 'rust': allowed python, numba, cython, cpp"),
        (TokenizerModel("t", instances=0), r"model 't': instances 0: must be >= 1"),
        (TokenizerModel("t", max_batch_size=0), r"model 't': max_batch_size 0: must be >= 1"),
        (TokenizerModel("t", buckets=0), r"model 't': buckets 0: must be >= 1"),
        (TokenizerModel("a/b"), r"model 'a/b': name must be a non-empty directory name"),
        (TokenizerModel("t", impl="cython"), r"model 't': impl 'cython' needs the compiled extensions"),
    ],
)
def test_bad_spec_is_refused_before_writing(tmp_path: Path, tokenizer_json: Path, model, message: str) -> None:
    with pytest.raises(SpecError, match=message):
        build_repository([model], tmp_path / "repo", tokenizer_json, build_dir=None)
    assert not (tmp_path / "repo").exists()


def test_duplicate_names_and_missing_tokenizer(tmp_path: Path, tokenizer_json: Path) -> None:
    with pytest.raises(SpecError, match=r"names \['t', 't'\] must be unique"):
        build_repository([TokenizerModel("t"), TokenizerModel("t")], tmp_path / "r", tokenizer_json, None)
    with pytest.raises(SpecError, match=r"tokenizer_json '.*missing.json' is not a file"):
        build_repository([TokenizerModel("t")], tmp_path / "r", tmp_path / "missing.json", None)
    assert not (tmp_path / "r").exists()
