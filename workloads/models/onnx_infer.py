"""Day-3 deliverable `onnx_infer.py`: classify held-out digits with an ONNX model in ONNX Runtime.

`python -m workloads.models.onnx_infer --model mlp.onnx --batch 8` prints each image's label and prediction
and the accuracy; `--export` first trains and writes the default model when the file does not exist.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from workloads.models import data, ortbench


class InferError(ValueError):
    """Bad input: the message names the option, the value and what is allowed."""


@dataclass(frozen=True)
class Prediction:
    index: int  # position in the sampled set
    label: int  # true digit
    predicted: int  # argmax of the logits
    confidence: float  # softmax probability of the predicted digit, 0..1


@dataclass(frozen=True)
class InferResult:
    model: str
    batch: int  # images per session.run call
    samples: int  # images classified
    calls: int  # session.run calls made
    accuracy: float  # fraction of samples predicted correctly, 0..1
    total_ms: float  # wall time of all session.run calls, ms
    providers: list[str]
    predictions: list[Prediction]


def check_args(model: Path, batch: int, samples: int, level: str, export: bool) -> None:
    """Validate before touching anything; raise InferError naming the field, the value and what is allowed."""
    if batch < 1:
        raise InferError(f"--batch {batch}: must be an integer >= 1")
    if samples < 1:
        raise InferError(f"--samples {samples}: must be an integer >= 1")
    if level not in ortbench.LEVELS:
        raise InferError(f"--opt-level {level!r}: allowed {', '.join(ortbench.LEVELS)}")
    if not model.exists() and not export:
        raise InferError(
            f"--model {model}: file not found "
            "(train and write it: python -m workloads.models.onnx_infer --model <path> --export)"
        )
    if model.exists() and model.is_dir():
        raise InferError(f"--model {model}: is a directory, expected an .onnx file")


def _softmax(z: np.ndarray) -> np.ndarray:
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def infer(
    model: Path, batch: int = 8, samples: int = 32, level: str = "all", threads: int = 1, export: bool = False
) -> InferResult:
    """Run `samples` held-out digits through `model` in batches of `batch`; returns predictions and accuracy."""
    model = Path(model)
    check_args(model, batch, samples, level, export)
    if not model.exists():
        model.parent.mkdir(parents=True, exist_ok=True)
        # export_default_model always names its file mlp.onnx: write it in a private dir, then move it into place
        from workloads.models import mlp  # torch: imported only when a model has to be trained

        with tempfile.TemporaryDirectory(dir=model.parent) as tmp:
            mlp.export_default_model(Path(tmp)).replace(model)
    sess = ortbench.session(model, level, intra_threads=threads)
    inp = sess.get_inputs()[0]
    fixed = inp.shape[0] if isinstance(inp.shape[0], int) else None
    if fixed is not None and fixed != batch:
        raise InferError(f"--batch {batch}: {model} has a fixed batch dimension of {fixed}; use --batch {fixed}")
    x, y = data.sample_inputs(samples)
    logits, total_ns, calls = [], 0, 0
    for i in range(0, samples, batch):
        t0 = time.perf_counter_ns()
        logits.append(sess.run(None, {inp.name: x[i : i + batch]})[0])
        total_ns += time.perf_counter_ns() - t0
        calls += 1
    z = np.concatenate(logits)
    prob = _softmax(z)
    pred = z.argmax(axis=1)
    preds = [Prediction(i, int(y[i]), int(pred[i]), float(prob[i, pred[i]])) for i in range(samples)]
    return InferResult(
        str(model), batch, samples, calls, float((pred == y).mean()), total_ns / 1e6, sess.get_providers(), preds
    )


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="Classify held-out digits with an ONNX model in ONNX Runtime.")
    ap.add_argument("--model", type=Path, default=Path("mlp.onnx"), help="ONNX model file (default mlp.onnx)")
    ap.add_argument("--batch", type=int, default=8, help="images per session.run call (default 8)")
    ap.add_argument("--samples", type=int, default=32, help="held-out images to classify (default 32)")
    ap.add_argument("--opt-level", default="all", help=f"ORT graph optimisation: {', '.join(ortbench.LEVELS)}")
    ap.add_argument("--threads", type=int, default=1, help="intra_op_num_threads (default 1)")
    ap.add_argument("--export", action="store_true", help="train and write the Day-3 MLP if --model is missing")
    ap.add_argument("--json", action="store_true", help="machine-readable output")
    a = ap.parse_args(argv)
    try:
        r = infer(a.model, a.batch, a.samples, a.opt_level, a.threads, a.export)
    except InferError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if a.json:
        print(json.dumps(asdict(r)))
        return 0
    print(f"model {r.model}  providers {','.join(r.providers)}  batch {r.batch}  calls {r.calls}")
    print(f"{'index':>5} {'label':>5} {'pred':>5} {'conf':>6}")
    for p in r.predictions:
        mark = "" if p.label == p.predicted else "  ✗"
        print(f"{p.index:>5} {p.label:>5} {p.predicted:>5} {p.confidence:>6.3f}{mark}")
    correct = sum(p.label == p.predicted for p in r.predictions)
    print(f"accuracy {r.accuracy:.4f} ({correct}/{r.samples})  inference {r.total_ms:.2f} ms total")
    return 0


if __name__ == "__main__":
    sys.exit(main())
