"""A BERT-base-shaped encoder from a `transformers` BertConfig (weights initialised here, nothing downloaded):
ONNX export and ONNX Runtime baseline, PyTorch FP32/FP16/INT8 on the GPU, and a small task trained here so
precision changes are judged by accuracy.

The task: does the sequence contain the marker token? Half the sequences get it at a random position; a
4-layer, 256-wide BERT learns it in a few hundred steps.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import torch

MARKER = 5
BASE = {"hidden_size": 768, "num_hidden_layers": 12, "num_attention_heads": 12, "intermediate_size": 3072}
SMALL = {"hidden_size": 256, "num_hidden_layers": 4, "num_attention_heads": 4, "intermediate_size": 1024}
TINY = {"hidden_size": 32, "num_hidden_layers": 1, "num_attention_heads": 2, "intermediate_size": 64}


def config(shape: dict[str, int], vocab: int = 30522, max_len: int = 512):
    from transformers import BertConfig

    return BertConfig(vocab_size=vocab, max_position_embeddings=max_len, num_labels=2, **shape)


def model(shape: dict[str, int], device: str, vocab: int = 30522, seed: int = 0) -> torch.nn.Module:
    """BertForSequenceClassification with random weights (seeded), eval mode, SDPA attention."""
    from transformers import BertForSequenceClassification

    torch.manual_seed(seed)
    m = BertForSequenceClassification(config(shape, vocab))
    return m.to(device).eval()


class Logits(torch.nn.Module):
    """(input_ids, attention_mask) → logits: a plain-tensor signature for export and compile."""

    def __init__(self, bert: torch.nn.Module) -> None:
        super().__init__()
        self.bert = bert

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        return self.bert(input_ids=input_ids, attention_mask=attention_mask).logits


def inputs(batch: int, seq: int, device: str, vocab: int = 30522, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(100, vocab, (batch, seq), generator=g)
    return ids.to(device), torch.ones(batch, seq, dtype=torch.int64, device=device)


def task(n: int, seq: int, vocab: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(token ids [n, seq], labels [n]): label 1 where the marker token was planted."""
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(10, vocab, (n, seq), generator=g)
    ids[:, 0] = 101  # [CLS]
    labels = torch.randint(0, 2, (n,), generator=g)
    pos = torch.randint(1, seq, (n,), generator=g)
    ids[labels == 1, pos[labels == 1]] = MARKER
    return ids, labels


@dataclass
class Trained:
    model: torch.nn.Module
    x_test: torch.Tensor
    y_test: torch.Tensor
    train_acc_pct: float


@lru_cache(maxsize=2)
def trained(shape_name: str, device: str, steps: int, seq: int = 64, vocab: int = 1000) -> Trained:
    """A small BERT trained on the marker task (AdamW, batch 64, FP32); held-out set of 1024."""
    shape = {"small": SMALL, "tiny": TINY}[shape_name]
    m = model(shape, device, vocab).train()
    opt = torch.optim.AdamW(m.parameters(), lr=3e-4)
    for step in range(steps):
        ids, y = task(64, seq, vocab, seed=1000 + step)
        loss = m(input_ids=ids.to(device), labels=y.to(device)).loss
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    m.eval()
    ids, y = task(1024, seq, vocab, seed=7)
    with torch.no_grad():
        tr_ids, tr_y = task(512, seq, vocab, seed=1000)
        acc = float((m(input_ids=tr_ids.to(device)).logits.argmax(1).cpu() == tr_y).float().mean() * 100)
    return Trained(m, ids.to(device), y, acc)
