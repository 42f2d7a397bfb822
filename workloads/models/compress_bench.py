"""Day-61 latency and size of model variants, torch eager and ONNX Runtime, timed with the Day-3 helpers (ortbench).

Every variant is timed round-robin with the others of its batch size (ortbench.interleaved) on one thread
(torch.set_num_threads(1), ORT intra/inter 1), so drift on a shared 2-core machine hits all alike.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from workloads.models import compress, data, ortbench, quantize


class TorchSession:
    """A torch module behind ORT's `run(output_names, feed)` call, so ortbench's timing loops time it unchanged."""

    def __init__(self, model: nn.Module) -> None:
        self.model = model.eval()

    def run(self, _output_names: object, feed: dict[str, np.ndarray]) -> list[np.ndarray]:
        with torch.inference_mode():
            return [self.model(torch.from_numpy(feed[data.INPUT_NAME])).numpy()]


@dataclass(frozen=True)
class Variant:
    """One model to compare: its runtime ('torch' or 'ort'), callable session and size as stored."""

    name: str
    runtime: str
    session: object  # TorchSession or onnxruntime.InferenceSession
    size_bytes: int  # torch: torch.save(state_dict); ort: the .onnx file
    deflated_bytes: int  # the same bytes through zlib (compress.deflated_size)
    size_what: str

    @property
    def key(self) -> str:
        """Unique among the variants compared: the same model may appear in both runtimes."""
        return f"{self.runtime}/{self.name}"

    def logits(self, x: np.ndarray) -> np.ndarray:
        return self.session.run(None, {data.INPUT_NAME: x})[0]  # type: ignore[attr-defined]

    def accuracy(self) -> float:
        """Held-out accuracy, fraction 0..1."""
        s = compress.split8()
        return float((self.logits(s.x_test).argmax(axis=1) == s.y_test).mean())


def torch_variant(name: str, model: nn.Module) -> Variant:
    raw = compress.state_bytes(model)
    return Variant(name, "torch", TorchSession(model), len(raw), compress.deflated_size(raw), "torch.save(state_dict)")


def ort_variant(name: str, path: Path) -> Variant:
    raw = Path(path).read_bytes()
    sess = ortbench.session(Path(path), "all", intra_threads=1, inter_threads=1)
    return Variant(name, "ort", sess, len(raw), compress.deflated_size(raw), ".onnx file")


def onnx_of(name: str, model: nn.Module, workdir: Path) -> Variant:
    """Export an FP32 torch model to workdir/<slug>.onnx and wrap it as an ORT variant."""
    return ort_variant(name, quantize.export_onnx(model, workdir / f"{_slug(name)}.onnx"))


def _slug(name: str) -> str:
    return "".join(c if c.isalnum() else "-" for c in name.lower()).strip("-")


def inputs(batch: int) -> np.ndarray:
    """`batch` held-out images (repeated in order when batch exceeds the 450 held out), float32 [batch, 1, 8, 8]."""
    x = compress.split8().x_test
    return np.ascontiguousarray(np.resize(x, (batch, *x.shape[1:])))


def latencies(
    variants: list[Variant], batches: list[int], warmup: int, iters: int, rounds: int
) -> dict[tuple[str, int], ortbench.Stats]:
    """(variant key, batch) → latency stats of one call; each batch's variants are timed interleaved."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # one thread for torch as for ORT: the comparison is per-core work, not threading
    try:
        if len({v.key for v in variants}) != len(variants):
            raise ValueError(f"variants: duplicate runtime/name in {[v.key for v in variants]}")
        out: dict[tuple[str, int], ortbench.Stats] = {}
        for b in batches:
            feed = {data.INPUT_NAME: inputs(b)}
            sessions = {v.key: v.session for v in variants}
            samples = ortbench.interleaved(sessions, dict.fromkeys(sessions, feed), warmup, iters, rounds)
            out.update({(k, b): ortbench.Stats.of(s, b) for k, s in samples.items()})
        return out
    finally:
        torch.set_num_threads(threads)


def timing_note(warmup: int, iters: int, rounds: int) -> str:
    return (
        f"Latency: one forward call (torch eager under inference_mode, or ORT session.run at optimisation level all), "
        f"1 thread each; {warmup} warm-up calls, then {iters} timed calls per variant and batch, interleaved "
        f"round-robin in {rounds} rounds; p50 over all timed calls. Inputs are held-out digits."
    )
