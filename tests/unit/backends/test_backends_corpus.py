"""The tokenizer is trained here on the project's own text; request texts come from docs/."""

from __future__ import annotations

from pathlib import Path

import pytest
from tokenizers import Tokenizer

from workloads.backends import corpus


def test_trained_tokenizer_knows_the_curriculum(tmp_path: Path) -> None:
    path = corpus.train(tmp_path / "tok" / "tokenizer.json", vocab_size=2000)
    tok = Tokenizer.from_file(str(path))
    assert tok.get_vocab_size() == 2000
    enc = tok.encode("Triton serving latency with dynamic batching")
    assert "[UNK]" not in enc.tokens and enc.tokens[0] == "triton"  # lower-cased, a whole word in the vocabulary
    assert tok.encode("推理服务").tokens == ["推", "理", "服", "务"]  # CJK characters split one by one


def test_texts_have_the_asked_length() -> None:
    xs = corpus.texts(20, 50)
    assert len(xs) == 20 and all(len(x.split()) == 50 for x in xs) and len(set(xs)) > 1


def test_texts_refuse_bad_sizes() -> None:
    with pytest.raises(ValueError, match="n 0 and words 5 must be >= 1"):
        corpus.texts(0, 5)
    with pytest.raises(ValueError, match="fewer than words=100000000"):
        corpus.texts(1, 100_000_000)
