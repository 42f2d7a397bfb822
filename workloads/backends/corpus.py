"""Text the project already has, and a WordPiece tokenizer (Hugging Face `tokenizers`) trained on it here.

Nothing is downloaded: the training text is the curriculum (`ailab/curriculum/days/*.yaml`, Chinese and English)
and the guides under `docs/`; the request texts are windows of words from the same English text.
"""

from __future__ import annotations

import re
from pathlib import Path

from ailab.contract import paths

DAYS = paths.REPO_ROOT / "ailab" / "curriculum" / "days"
DOCS = paths.REPO_ROOT / "docs"


def training_files() -> list[Path]:
    """The files the tokenizer learns from, in a fixed order."""
    files = sorted(DAYS.glob("d*.yaml")) + sorted(DOCS.glob("*.md"))
    if not files:
        raise FileNotFoundError(f"no training text under {DAYS} or {DOCS}")
    return files


def train(out: Path, vocab_size: int = 4000) -> Path:
    """Train a BERT-style WordPiece tokenizer on training_files(); writes and returns `out` (tokenizer.json)."""
    from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, trainers

    tok = Tokenizer(models.WordPiece(unk_token="[UNK]"))
    tok.normalizer = normalizers.BertNormalizer(lowercase=True, handle_chinese_chars=True)
    tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tok.decoder = decoders.WordPiece()
    trainer = trainers.WordPieceTrainer(
        vocab_size=vocab_size, special_tokens=["[PAD]", "[UNK]", "[CLS]", "[SEP]"], show_progress=False
    )
    tok.train([str(f) for f in training_files()], trainer)
    out.parent.mkdir(parents=True, exist_ok=True)
    tok.save(str(out))
    return out


def texts(n: int, words: int) -> list[str]:
    """n request texts of `words` words each: consecutive windows over the English guides (wrapping around)."""
    if n < 1 or words < 1:
        raise ValueError(f"texts: n {n} and words {words} must be >= 1")
    tokens = re.findall(r"\S+", " ".join(f.read_text(encoding="utf-8") for f in sorted(DOCS.glob("*.md"))))
    if len(tokens) < words:
        raise ValueError(f"texts: the guides have {len(tokens)} words, fewer than words={words}")
    step = max(1, min(words, (len(tokens) - words) // n))
    return [" ".join(tokens[(i * step) % (len(tokens) - words + 1) :][:words]) for i in range(n)]
