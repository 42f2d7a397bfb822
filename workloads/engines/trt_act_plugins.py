"""Swish and Mish as TensorRT plugins (the TensorRT path of d12 and d66, for hosts that have TensorRT).

- C++: `trt_plugins/act_plugin.cpp` (IPluginV3 with the OneCore/OneBuild/OneRuntime capabilities, two creators
  registered by REGISTER_TENSORRT_PLUGIN) over the kernels of `trt_plugins/act_kernels.cuh`, the same source the
  torch.library ops compile with NVRTC. `trt_plugins/CMakeLists.txt` builds the kernels everywhere and the plugin
  library only where TensorRT is found (`build_plugin_library`).
- ONNX: `export_with_plugins` writes a model that uses `ailab::swish` / `ailab::mish` with those ops as nodes of
  the custom domain `ailab.trt` (op_type = plugin name, attributes plugin_version / plugin_namespace), which is how
  TensorRT's ONNX parser maps an unknown node to a registered plugin; `plugin_nodes` lists them.
- TensorRT: `load_plugin_library` (ctypes, then the creators checked in `trt.get_plugin_registry()`),
  `add_plugin_layer` (a plugin layer put into a network by hand), `plugin_engine_rows` (build from the ONNX file,
  run, compare with PyTorch); `trtexec_plugin_command` spells the same build for trtexec.

Everything that needs TensorRT calls `require_tensorrt()` first (imported lazily); the rest runs and is tested here.
"""

from __future__ import annotations

import ctypes
import os
import subprocess
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from ailab.contract.paths import REPO_ROOT
from workloads.engines.trt import BuildConfig, require_tensorrt, trtexec_command

ONNX_DOMAIN = "ailab.trt"
PLUGINS = {"swish": "AilabSwish", "mish": "AilabMish"}  # act -> plugin name (= ONNX op_type)
PLUGIN_VERSION = "1"
PLUGIN_NAMESPACE = ""
SOURCE_DIR = Path(__file__).with_name("trt_plugins")
BUILD_DIR = REPO_ROOT / "build" / "trt_plugins"
LIBRARY = "libailab_trt_plugins.so"
SKIP_MESSAGE = "ailab_trt_plugins: skipped, TensorRT not found"
NEEDS_TENSORRT_PLUGIN = (
    "TensorRT plugin path not run: needs TensorRT (the `tensorrt` package is not importable on this host); "
    "the plugins are trt_plugins/act_plugin.cpp"
)


class PluginError(ValueError):
    """A plugin setting or library problem; the message names the field, the value and what is allowed."""


def check_act(act: str) -> str:
    if act not in PLUGINS:
        raise PluginError(f"field act = {act!r}: allowed {', '.join(PLUGINS)}")
    return act


# --- ONNX with plugin nodes (no TensorRT needed) -------------------------------------------------------------------


def register_onnx_symbolics(opset: int = 17) -> None:
    """Map the torch.library ops to custom-domain ONNX nodes for the TorchScript exporter (idempotent)."""
    from torch.onnx import register_custom_op_symbolic

    for act, name in PLUGINS.items():

        def symbolic(g: Any, x: Any, impl: Any, name: str = name) -> Any:  # `impl` picks a torch kernel: not exported
            node = g.op(
                f"{ONNX_DOMAIN}::{name}", x, plugin_version_s=PLUGIN_VERSION, plugin_namespace_s=PLUGIN_NAMESPACE
            )
            return node.setType(x.type())  # elementwise: the output has the input's type and shape

        register_custom_op_symbolic(f"ailab::{act}", symbolic, opset)


def export_with_plugins(model: Any, example: tuple[Any, ...], path: Path, opset: int = 17) -> Path:
    """Export `model` (which calls ailab::swish / ailab::mish) to ONNX with those ops as plugin nodes; the batch
    dimension of `input` and `output` is dynamic."""
    from workloads.engines import onnx_export

    register_onnx_symbolics(opset)
    return onnx_export.export(model, example, path, ["input"], ["output"], opset=opset, custom_opsets={ONNX_DOMAIN: 1})


def plugin_nodes(path: Path) -> list[dict[str, Any]]:
    """The custom-domain nodes of an ONNX file: op_type, domain, inputs, outputs and string attributes."""
    import onnx

    model = onnx.load(str(path))
    out = []
    for n in model.graph.node:
        if n.domain != ONNX_DOMAIN:
            continue
        attrs = {a.name: onnx.helper.get_attribute_value(a) for a in n.attribute}
        out.append(
            {
                "op_type": n.op_type,
                "domain": n.domain,
                "inputs": list(n.input),
                "outputs": list(n.output),
                "attributes": {k: v.decode() if isinstance(v, bytes) else v for k, v in attrs.items()},
            }
        )
    return out


def with_native_ops(path: Path, out: Path) -> Path:
    """A copy of the ONNX file with each plugin node replaced by standard ops (Swish = x·Sigmoid(x),
    Mish = x·Tanh(Softplus(x))), so ONNX Runtime can check the exported graph against PyTorch."""
    import onnx
    from onnx import helper

    model = onnx.load(str(path))
    nodes = []
    for n in model.graph.node:
        if n.domain != ONNX_DOMAIN:
            nodes.append(n)
            continue
        x, y = n.input[0], n.output[0]
        if n.op_type == PLUGINS["swish"]:
            nodes += [helper.make_node("Sigmoid", [x], [y + "_sig"]), helper.make_node("Mul", [x, y + "_sig"], [y])]
        elif n.op_type == PLUGINS["mish"]:
            nodes += [
                helper.make_node("Softplus", [x], [y + "_sp"]),
                helper.make_node("Tanh", [y + "_sp"], [y + "_tanh"]),
                helper.make_node("Mul", [x, y + "_tanh"], [y]),
            ]
        else:
            raise PluginError(f"field op_type = {n.op_type!r}: allowed {', '.join(PLUGINS.values())}")
    del model.graph.node[:]
    model.graph.node.extend(nodes)
    kept = [o for o in model.opset_import if o.domain != ONNX_DOMAIN]
    del model.opset_import[:]
    model.opset_import.extend(kept)
    onnx.save(model, str(out))
    return out


# --- building the plugin library (CMake; the plugin target only where TensorRT is found) ---------------------------


def cmake_commands(build_dir: Path = BUILD_DIR, tensorrt_root: str | None = None) -> list[list[str]]:
    """Configure and build trt_plugins/ (the plugin library needs TENSORRT_ROOT or TensorRT on the default paths)."""
    cfg = ["cmake", "-S", str(SOURCE_DIR), "-B", str(build_dir), "-G", "Ninja", "-DCMAKE_BUILD_TYPE=Release"]
    if tensorrt_root:
        cfg.append(f"-DTENSORRT_ROOT={tensorrt_root}")
    return [cfg, ["cmake", "--build", str(build_dir)]]


@dataclass
class LibraryBuild:
    build_dir: Path
    library: Path | None  # None where the plugin target was skipped
    skipped: bool
    log: str


def build_plugin_library(
    build_dir: Path = BUILD_DIR, tensorrt_root: str | None = None, timeout_s: float = 600
) -> LibraryBuild:
    """Run `cmake_commands`; the kernels always build, the library only where CMake found TensorRT."""
    log = []
    for cmd in cmake_commands(build_dir, tensorrt_root):
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout_s, check=False)
        log.append(p.stdout + p.stderr)
        if p.returncode != 0:
            raise RuntimeError(f"{' '.join(cmd[:2])} failed (rc {p.returncode}): {(p.stdout + p.stderr)[-2000:]}")
    text = "\n".join(log)
    lib = build_dir / LIBRARY
    return LibraryBuild(build_dir, lib if lib.exists() else None, SKIP_MESSAGE in text, text)


def default_library() -> Path:
    """AILAB_TRT_PLUGIN_LIB, else the library `build_plugin_library` writes."""
    return Path(os.environ.get("AILAB_TRT_PLUGIN_LIB") or BUILD_DIR / LIBRARY)


# --- command lines ---------------------------------------------------------------------------------------------------


def trtexec_plugin_command(cfg: BuildConfig, onnx: str, engine: str, lib: str, legacy: bool = False) -> list[str]:
    """trtexec building `engine` from an ONNX file with plugin nodes: the library loaded with --staticPlugins
    (TensorRT 10) or --plugins (TensorRT 8.x, deprecated in 10)."""
    if not lib.endswith(".so"):
        raise PluginError(f"field lib = {lib!r}: a plugin library is a shared object (.so)")
    cmd = trtexec_command(cfg, onnx, engine)
    return [cmd[0], f"{'--plugins' if legacy else '--staticPlugins'}={lib}", *cmd[1:]]


def polygraphy_plugin_command(onnx: str, engine: str, lib: str, precision: str = "fp16") -> list[str]:
    """Polygraphy's build of the same engine (its --plugins loads the library before parsing)."""
    cmd = ["polygraphy", "convert", onnx, "-o", engine, "--plugins", lib]
    return cmd + ([f"--{precision}"] if precision not in ("fp32", "tf32") else [])


# --- TensorRT (imported lazily) --------------------------------------------------------------------------------------


def load_plugin_library(lib: Path | None = None) -> Any:
    """dlopen the plugin library (its static registrars register both creators) and check the registry has them."""
    trt = require_tensorrt()
    path = Path(lib or default_library())
    if not path.is_file():
        hint = " && ".join(" ".join(c) for c in cmake_commands())
        raise PluginError(f"field lib = {path}: no plugin library there; build it with: {hint}")
    handle = ctypes.CDLL(str(path), mode=ctypes.RTLD_GLOBAL)
    registry = trt.get_plugin_registry()
    missing = [n for n in PLUGINS.values() if registry.get_creator(n, PLUGIN_VERSION, PLUGIN_NAMESPACE) is None]
    if missing:
        raise PluginError(f"field lib = {path}: loaded, but the registry has no creator for {missing}")
    return handle


def add_plugin_layer(network: Any, tensor: Any, act: str) -> Any:
    """Put the Swish/Mish plugin after `tensor` in a network built by hand (the ONNX parser does the same for a
    plugin node); returns the layer."""
    trt = require_tensorrt()
    name = PLUGINS[check_act(act)]
    creator = trt.get_plugin_registry().get_creator(name, PLUGIN_VERSION, PLUGIN_NAMESPACE)
    if creator is None:
        raise PluginError(f"field act = {act!r}: plugin {name} is not registered; call load_plugin_library() first")
    plugin = creator.create_plugin(name, trt.PluginFieldCollection([]), trt.TensorRTPhase.BUILD)
    return network.add_plugin_v3([tensor], [], plugin)


@dataclass
class PluginRow:
    act: str
    precision: str
    build_s: float
    engine_kib: float
    batch: int
    p50_ms: float
    max_abs_err: float  # engine output vs the PyTorch model (reference activation), same input

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def plugin_engine_rows(
    workdir: Path, acts: list[str], batch: int, features: int, iters: int, lib: Path | None = None
) -> list[PluginRow]:
    """Per activation: export the ActBlock with the plugin node, build an FP16 engine with the plugin, run it and
    compare with PyTorch on the same input."""
    require_tensorrt()
    import torch

    from workloads.engines.custom_ops import ActBlock
    from workloads.engines.profiles import batch_profile
    from workloads.engines.timing import time_calls
    from workloads.engines.trt import build_engine, deserialize_seconds
    from workloads.engines.trt_bench import EngineRunner

    load_plugin_library(lib)
    rows = []
    for act in acts:
        torch.manual_seed(0)
        model = ActBlock(check_act(act), "reference", dim=features).eval()
        onnx_path = export_with_plugins(model, (torch.randn(1, features),), workdir / f"act_{act}_plugin.onnx")
        cfg = BuildConfig(precision="fp16", profiles=(batch_profile("input", (features,), 1, batch, batch),))
        built = build_engine(onnx_path, workdir / f"act_{act}_plugin.engine", cfg)
        engine, _ = deserialize_seconds(built.path)
        run = EngineRunner(engine)
        x = torch.randn(batch, features)
        with torch.no_grad():
            ref = model(x)
        xc = x.cuda()
        err = float((run(xc).cpu() - ref).abs().max())
        lat = time_calls(lambda run=run, xc=xc: run(xc), "cuda", warmup=5, iters=iters)
        rows.append(PluginRow(act, "fp16", built.build_s, built.size_bytes / 1024, batch, lat.p50_ms, err))
    return rows
