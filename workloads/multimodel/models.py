"""The models of the multi-model days as typed specs: the Day-3 MLP (small), a wide MLP with random weights (large,
about 40 times the arithmetic per image) and a fixed-cost model for scheduler experiments.

All take "input" float32 [B, 1, 28, 28] and return "logits" float32 [B, 10], so one load generator drives them all.
"""

from __future__ import annotations

import itertools
from pathlib import Path

from workloads.serving.modelspec import DynamicBatching, InstanceGroup, ModelSpec, RateLimiter
from workloads.serving.repository import Source, mlp_spec, register_source

FIXED_COST_PY = Path(__file__).with_name("backend") / "fixed_cost.py"
LARGE_HIDDEN = (2048, 2048, 2048)  # 784 -> 2048 -> 2048 -> 2048 -> 10 with ReLU: ~10.0 M multiply-adds per image
SHAPES = {"input": (-1, 1, 28, 28), "logits": (-1, 10)}


def large_onnx(cache_dir: Path, hidden: tuple[int, ...] = LARGE_HIDDEN, seed: int = 0) -> Path:
    """The large MLP as an ONNX file (He-initialised random weights: its answers are not meant to be right, its
    cost is what matters), written once per shape into the model cache."""
    import numpy as np
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    out = Path(cache_dir) / f"mlp_large_{'x'.join(map(str, hidden))}_s{seed}.onnx"
    if out.exists():
        return out
    rng = np.random.default_rng(seed)
    widths = [784, *hidden, 10]
    inits = [numpy_helper.from_array(np.array([-1, 784], dtype=np.int64), "flat_shape")]
    nodes = [helper.make_node("Reshape", ["input", "flat_shape"], ["h0"])]
    for i, (a, b) in enumerate(itertools.pairwise(widths)):
        w = (rng.standard_normal((a, b)) * np.sqrt(2.0 / a)).astype(np.float32)
        inits += [numpy_helper.from_array(w, f"w{i}"), numpy_helper.from_array(np.zeros(b, np.float32), f"b{i}")]
        last = i == len(widths) - 2
        nodes.append(helper.make_node("Gemm", [f"h{i}", f"w{i}", f"b{i}"], ["logits" if last else f"g{i}"]))
        if not last:
            nodes.append(helper.make_node("Relu", [f"g{i}"], [f"h{i + 1}"]))
    graph = helper.make_graph(
        nodes,
        "mlp_large",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["batch", 1, 28, 28])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["batch", 10])],
        inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    onnx.checker.check_model(model)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(".tmp")
    onnx.save(model, str(tmp))
    tmp.replace(out)
    return out


def _large_files(runtime: str, cache_dir: Path) -> dict[str, Path]:
    if runtime != "onnxruntime":
        raise ValueError(f"mlp_large: runtime {runtime!r}: only onnxruntime")
    return {"model.onnx": large_onnx(cache_dir)}


def _no_files(_runtime: str, _cache: Path) -> dict[str, Path]:
    return {}


register_source("mlp_large", Source(SHAPES, _large_files))
register_source("fixed_cost", Source(SHAPES, _no_files, FIXED_COST_PY))


def small(name: str = "small", **kw: object) -> ModelSpec:
    """The Day-3 MLP (784 -> 256 -> 128 -> 10)."""
    return mlp_spec(name, **kw)


def large(name: str = "large", **kw: object) -> ModelSpec:
    """The wide MLP (LARGE_HIDDEN), same tensors as the small one."""
    return mlp_spec(name, source="mlp_large", **kw)


def fixed_cost(
    name: str,
    delay_ms: float,
    count: int = 1,
    rate_limiter: RateLimiter | None = None,
    dynamic_batching: DynamicBatching | None = None,
    max_batch_size: int = 8,
) -> ModelSpec:
    """A model whose every execution takes `delay_ms` (see backend/fixed_cost.py), `count` CPU instances."""
    return mlp_spec(
        name,
        source="fixed_cost",
        max_batch_size=max_batch_size,
        instance_groups=(InstanceGroup(count=count, rate_limiter=rate_limiter),),
        dynamic_batching=dynamic_batching,
        parameters={"delay_ms": f"{delay_ms:g}"},
    )
