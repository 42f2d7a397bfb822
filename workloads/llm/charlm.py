"""A character-level model trained here (300 steps, 1-2 min on 2 CPU cores): quality metrics without downloads.

Text: the Python language reference topics that ship with the standard library (`pydoc_data.topics`, ~465k
characters of English prose and code), mapped to ASCII (other characters become '?'). Every 20th topic (sorted
by name) is held out for evaluation. The trained weights are cached under .lab/llm/, keyed by a hash of the
text, the config and the training settings, and retrained when missing.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import time
from dataclasses import dataclass

import torch
from torch.nn import functional as F  # noqa: N812 - the conventional name

from ailab.contract.paths import state_dir
from workloads.llm.kvcache import NoCache
from workloads.llm.model import DecoderLM, ModelConfig, build

CONFIG = ModelConfig(vocab_size=128, d_model=128, n_layers=3, n_heads=4, seed=0)
SEQ_LEN = 128  # training context (characters): longer inputs are out of the training distribution
SOURCE = "pydoc_data.topics (Python standard library language-reference topics)"


@dataclass(frozen=True)
class Train:
    """Training settings (steps × batch × SEQ_LEN characters, AdamW, cosine decay)."""

    steps: int = 300
    batch: int = 16
    lr: float = 3e-3
    seed: int = 0


def encode(text: str) -> list[int]:
    return [ord(c) if ord(c) < 128 else ord("?") for c in text]


def decode(tokens: list[int]) -> str:
    return "".join(chr(t) for t in tokens)


def corpus() -> tuple[list[int], list[int]]:
    """(train, held-out) token lists from the stdlib topics; every 20th topic by name is held out."""
    from pydoc_data.topics import topics

    names = sorted(topics)
    train = "\n\n".join(topics[n] for i, n in enumerate(names) if i % 20 != 7)
    held = "\n\n".join(topics[n] for i, n in enumerate(names) if i % 20 == 7)
    return encode(train), encode(held)


def _key(train: list[int], settings: Train) -> str:
    h = hashlib.sha256(bytes(train))
    h.update(json.dumps([CONFIG.as_dict(), SEQ_LEN, settings.__dict__], sort_keys=True).encode())
    return h.hexdigest()[:16]


def text_sha() -> str:
    """sha256 (first 12 hex) of the training text, so results name exactly what the model learned from."""
    return hashlib.sha256(bytes(corpus()[0])).hexdigest()[:12]


def train(settings: Train, log=print, device: str = "cpu") -> tuple[DecoderLM, dict]:
    """Train CONFIG on the train split on `device`; returns the model and a summary (loss in nats/char, seconds)."""
    torch.manual_seed(settings.seed)
    data = torch.tensor(corpus()[0], dtype=torch.long)
    model = DecoderLM(CONFIG).to(device).train()
    opt = torch.optim.AdamW(model.parameters(), lr=settings.lr, weight_decay=0.01, betas=(0.9, 0.95))
    gen = torch.Generator().manual_seed(settings.seed)
    pos = torch.arange(SEQ_LEN, device=device)
    t0, losses = time.perf_counter(), []
    for step in range(settings.steps):
        for g in opt.param_groups:  # short warm-up then cosine decay to 10%
            warm = min(1.0, (step + 1) / 30)
            g["lr"] = settings.lr * warm * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * step / settings.steps)))
        starts = torch.randint(0, len(data) - SEQ_LEN - 1, (settings.batch,), generator=gen)
        x = torch.stack([data[s : s + SEQ_LEN] for s in starts])
        y = torch.stack([data[s + 1 : s + SEQ_LEN + 1] for s in starts])
        x, y = x.to(device), y.to(device)
        loss = F.cross_entropy(model(x, pos, NoCache()).flatten(0, 1), y.flatten())
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        losses.append(loss.item())
        if step % 100 == 0 or step == settings.steps - 1:
            log(f"charlm step {step}/{settings.steps} loss {loss:.3f} nats/char")
    tail = losses[-50:]
    return model.eval(), {
        "device": device,
        "train_s": time.perf_counter() - t0,
        "final_train_loss": sum(tail) / len(tail),
        "steps": settings.steps,
        "batch": settings.batch,
        "seq_len": SEQ_LEN,
    }


def load_or_train(settings: Train | None = None, device: str = "cpu", log=print) -> tuple[DecoderLM, dict]:
    """The trained model on `device` (float32), from .lab/llm/ or trained now and cached there."""
    settings = settings or Train()
    key = _key(corpus()[0], settings)
    path = state_dir() / "llm" / f"charlm-{key}.pt"
    if path.exists():
        blob = torch.load(path, map_location="cpu", weights_only=True)
        model = DecoderLM(CONFIG)
        model.load_state_dict(blob["state"])
        info = blob["info"]
    else:
        log(f"charlm: training ({settings.steps} steps) into {path}")
        model, info = train(settings, log, device)  # on a GPU host: seconds instead of minutes
        model = model.cpu()
        info = {**info, "text": SOURCE, "text_sha256_12": text_sha(), "key": key}
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".{os.getpid()}.tmp")  # rename is atomic: concurrent runs never read half a file
        torch.save({"state": model.state_dict(), "info": info}, tmp)
        tmp.replace(path)
    m = build(CONFIG, device)
    m.load_state_dict(model.state_dict())
    return m.requires_grad_(False), info
