"""d03.e4: replace one ReLU of the MLP with a custom torch.autograd.Function and record what export/run does.

Four variants of the same ReLU, each tried with every exporter path; every outcome (success or the
exception) is recorded with an explanation instead of being allowed to escape.
"""

from __future__ import annotations

import contextlib
import copy
import os
import tempfile
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from workloads.models.mlp import INPUT_NAME, MLP, OUTPUT_NAME


class AtenBodyReLU(torch.autograd.Function):
    """forward in ATen ops (clamp) with a hand-written backward; no ONNX mapping given."""

    @staticmethod
    def forward(ctx, x: torch.Tensor) -> torch.Tensor:
        ctx.save_for_backward(x)
        return x.clamp(min=0)

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> torch.Tensor:
        (x,) = ctx.saved_tensors
        return grad * (x > 0)


class NumpyBodyReLU(torch.autograd.Function):
    """forward leaves torch through numpy (an opaque Python computation the tracer cannot see into)."""

    @staticmethod
    def forward(ctx, x: torch.Tensor) -> torch.Tensor:
        return torch.from_numpy(np.maximum(x.detach().cpu().numpy(), 0))

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> torch.Tensor:
        return grad


class CustomDomainReLU(torch.autograd.Function):
    """`symbolic` maps it to a non-standard op ailab::CustomRelu that no ONNX runtime implements."""

    @staticmethod
    def forward(ctx, x: torch.Tensor) -> torch.Tensor:
        return x.clamp(min=0)

    @staticmethod
    def symbolic(g, x):
        return g.op("ailab::CustomRelu", x).setType(x.type())


class OnnxReluSymbolic(torch.autograd.Function):
    """`symbolic` maps it to the standard ONNX Relu: the documented fix for the TorchScript exporter."""

    @staticmethod
    def forward(ctx, x: torch.Tensor) -> torch.Tensor:
        return x.clamp(min=0)

    @staticmethod
    def symbolic(g, x):
        return g.op("Relu", x)


VARIANTS: dict[str, type[torch.autograd.Function]] = {
    "aten_body": AtenBodyReLU,
    "numpy_body": NumpyBodyReLU,
    "symbolic_custom_domain": CustomDomainReLU,
    "symbolic_onnx_relu": OnnxReluSymbolic,
}
EXPORTERS = ("torchscript", "torchscript_no_inlining", "dynamo")


class Applied(nn.Module):
    """Wraps an autograd.Function so it can stand in for an nn.ReLU module."""

    def __init__(self, fn: type[torch.autograd.Function]) -> None:
        super().__init__()
        self.fn = fn

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fn.apply(x)


def with_custom_relu(model: MLP, variant: str) -> MLP:
    """A copy of `model` whose first ReLU (act1) is the custom function `variant`."""
    if variant not in VARIANTS:
        raise ValueError(f"error: variant {variant!r}: allowed {', '.join(VARIANTS)}")
    m = copy.deepcopy(model).eval()
    m.act1 = Applied(VARIANTS[variant])
    return m


@dataclass(frozen=True)
class Attempt:
    variant: str
    exporter: str
    export_ok: bool
    ops: str  # node op types of the exported graph ("" when export failed)
    run_ok: bool | None  # None: not attempted (export failed)
    max_abs_diff: float | None  # ORT vs torch logits on a batch other than the export's, when it ran
    error: str  # first line of the export or run error, "" when none
    explanation: str
    exporter_warning: str = ""  # first warning the exporter's C++ side printed to stderr, if any


@contextlib.contextmanager
def captured_stderr(into: list[str]) -> Iterator[None]:
    """Capture fd 2 (the exporter's C++ warnings bypass sys.stderr) and append what was written to `into`."""
    with tempfile.TemporaryFile(mode="w+b") as tmp:
        saved = os.dup(2)
        os.dup2(tmp.fileno(), 2)
        try:
            yield
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            tmp.seek(0)
            into.append(tmp.read().decode(errors="replace"))


def _first_warning(text: str) -> str:
    """The first C++ 'Warning:' line, joined with the exception line that follows it when there is one."""
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    for i, line in enumerate(lines):
        if "Warning:" in line:
            said = line.split("Warning:", 1)[1].strip()
            if said.endswith("exception") and i + 1 < len(lines):
                said += ": " + lines[i + 1].split(" at ")[0]
            return said[:240]
    return ""


def _first_line(exc: BaseException, path: Path) -> str:
    text = f"{type(exc).__name__}: {exc}".strip().replace(str(path), path.name)
    return text.splitlines()[0][:240]


def explain(error: str) -> str:
    """Why this error happens, for the error messages the exporters and ORT produce here."""
    rules = (
        (
            "Couldn't export Python operator",
            "autograd inlining off: the Function stays an opaque prim::PythonOp; "
            "the TorchScript exporter needs a `symbolic` staticmethod to map it to ONNX ops",
        ),
        (
            "Couldn't export operator aten::lift_fresh",
            "the forward went through numpy: tracing records "
            "torch.from_numpy as aten::lift_fresh of an untracked tensor, which has no ONNX symbolic",
        ),
        (
            "is not a registered function/op",
            "the graph is valid ONNX but uses a custom domain op; ORT has no kernel "
            "for it unless a custom-op library (SessionOptions.register_custom_ops_library) provides one",
        ),
    )
    for needle, why in rules:
        if needle in error:
            return why
    return "see the error text" if error else ""


def _export(model: nn.Module, exporter: str, path: Path, opset: int) -> None:
    x = torch.rand(2, 1, 28, 28)
    common = {"input_names": [INPUT_NAME], "output_names": [OUTPUT_NAME], "opset_version": opset}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # deprecation chatter of the TorchScript exporter; outcomes are recorded
        if exporter == "dynamo":
            dyn = ({0: torch.export.Dim("batch")},)
            torch.onnx.export(model, (x,), str(path), dynamo=True, dynamic_shapes=dyn, verbose=False, **common)
        else:
            axes = {INPUT_NAME: {0: "batch"}, OUTPUT_NAME: {0: "batch"}}
            inline = exporter == "torchscript"
            torch.onnx.export(
                model, (x,), str(path), dynamo=False, dynamic_axes=axes, autograd_inlining=inline, **common
            )


def attempt(model: MLP, variant: str, exporter: str, workdir: Path, opset: int = 17) -> Attempt:
    """Export `model` with `variant` in place of act1 via `exporter`, then load and run it in ORT."""
    import onnxruntime as ort

    from workloads.models.ortbench import fmt_ops, op_counts

    if exporter not in EXPORTERS:
        raise ValueError(f"error: exporter {exporter!r}: allowed {', '.join(EXPORTERS)}")
    m = with_custom_relu(model, variant)
    path = workdir / f"e4_{variant}_{exporter}.onnx"
    path.unlink(missing_ok=True)
    said: list[str] = []
    try:
        with captured_stderr(said):
            _export(m, exporter, path, opset)
    except Exception as exc:  # noqa: BLE001 - the failure is the measurement
        err = _first_line(exc, path)
        return Attempt(variant, exporter, False, "", None, None, err, explain(err), _first_warning(said[0]))
    warned = _first_warning(said[0])
    ops = fmt_ops(op_counts(path))
    x = torch.rand(8, 1, 28, 28, generator=torch.Generator().manual_seed(1))  # batch 8 ≠ export batch 2
    try:
        sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        got = sess.run(None, {INPUT_NAME: x.numpy()})[0]
    except Exception as exc:  # noqa: BLE001 - the failure is the measurement
        err = _first_line(exc, path)
        return Attempt(variant, exporter, True, ops, False, None, err, explain(err), warned)
    with torch.no_grad():
        ref = m(x).numpy()
    diff = float(np.abs(got - ref).max()) if got.shape == ref.shape else float("inf")
    why = "exported and ran; logits match torch" if diff < 1e-4 else "exported and ran, but logits differ from torch"
    if exporter == "dynamo":
        why += "; torch.export captured the forward as ATen ops (a `symbolic` method is not consulted)"
    return Attempt(variant, exporter, True, ops, True, diff, "", why, warned)
