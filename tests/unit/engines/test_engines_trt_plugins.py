"""The Swish/Mish TensorRT plugins without TensorRT: the ONNX export with plugin nodes (checked against PyTorch
through ONNX Runtime once the nodes are swapped for standard ops), the trtexec/Polygraphy/CMake command lines, the
CMake target's skip where TensorRT is absent, the shared kernels compiled with nvcc (CMake) and NVRTC, and the
"needs TensorRT" answers. Nothing is mocked; what needs TensorRT itself is not run here (no TensorRT on this host)."""

from __future__ import annotations

import importlib.util
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
import torch

from ailab.contract import Context
from workloads.engines import custom_ops as co
from workloads.engines import trt_act_plugins as tp
from workloads.engines.profiles import batch_profile
from workloads.engines.trt import BuildConfig, TensorRTMissingError

HAS_TRT = importlib.util.find_spec("tensorrt") is not None


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    d = tmp_path_factory.mktemp("plugin_onnx")
    out = {}
    for act in ("swish", "mish"):
        torch.manual_seed(0)
        blk = co.ActBlock(act, "reference", dim=16).eval()
        out[act] = (blk, tp.export_with_plugins(blk, (torch.randn(2, 16),), d / f"{act}.onnx"))
    return out


@pytest.mark.parametrize("act", ["swish", "mish"])
def test_export_has_the_plugin_node_in_the_custom_domain(exported, act):
    import onnx

    _, path = exported[act]
    nodes = tp.plugin_nodes(path)
    assert len(nodes) == 1
    n = nodes[0]
    assert n["op_type"] == {"swish": "AilabSwish", "mish": "AilabMish"}[act] and n["domain"] == "ailab.trt"
    assert n["attributes"] == {"plugin_version": "1", "plugin_namespace": ""}  # what the ONNX parser reads
    model = onnx.load(str(path))
    onnx.checker.check_model(model)
    assert {(o.domain, o.version) for o in model.opset_import} >= {("ailab.trt", 1), ("", 17)}
    ops = [x.op_type for x in model.graph.node]
    assert ops == ["Gemm", n["op_type"], "Gemm"]  # between the block's two Linear layers
    gemm_a, _, gemm_b = model.graph.node
    assert n["inputs"] == [gemm_a.output[0]] and gemm_b.input[0] == n["outputs"][0]
    assert model.graph.input[0].type.tensor_type.shape.dim[0].dim_param == "batch"


@pytest.mark.parametrize("act", ["swish", "mish"])
def test_exported_graph_computes_the_block_once_plugins_are_standard_ops(exported, act, tmp_path):
    import onnxruntime as ort

    blk, path = exported[act]
    native = tp.with_native_ops(path, tmp_path / "native.onnx")
    assert tp.plugin_nodes(native) == []
    sess = ort.InferenceSession(str(native), providers=["CPUExecutionProvider"])
    x = torch.randn(5, 16)  # another batch than the export's: the batch stays dynamic
    got = sess.run(None, {"input": x.numpy()})[0]
    with torch.no_grad():
        want = blk(x).numpy()
    assert np.abs(got - want).max() < 1e-5


def test_unknown_plugin_node_and_act_are_named(tmp_path):
    from onnx import TensorProto, helper, save

    g = helper.make_graph(
        [helper.make_node("AilabGelu", ["x"], ["y"], domain="ailab.trt")],
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1])],
    )
    save(helper.make_model(g), str(tmp_path / "bad.onnx"))
    with pytest.raises(tp.PluginError, match="field op_type = 'AilabGelu': allowed AilabSwish, AilabMish"):
        tp.with_native_ops(tmp_path / "bad.onnx", tmp_path / "out.onnx")
    with pytest.raises(tp.PluginError, match="field act = 'gelu': allowed swish, mish"):
        tp.check_act("gelu")


def test_trtexec_and_polygraphy_lines_load_the_plugin_library():
    cfg = BuildConfig(precision="fp16", profiles=(batch_profile("input", (256,), 1, 16, 64),))
    cmd = tp.trtexec_plugin_command(cfg, "a.onnx", "a.engine", "/x/libailab_trt_plugins.so")
    assert cmd[:3] == ["trtexec", "--staticPlugins=/x/libailab_trt_plugins.so", "--onnx=a.onnx"]
    assert "--fp16" in cmd and "--minShapes=input:1x256" in cmd and "--maxShapes=input:64x256" in cmd
    legacy = tp.trtexec_plugin_command(cfg, "a.onnx", "a.engine", "lib.so", legacy=True)
    assert legacy[1] == "--plugins=lib.so"
    with pytest.raises(tp.PluginError, match=r"field lib = 'lib\.dll'"):
        tp.trtexec_plugin_command(cfg, "a.onnx", "a.engine", "lib.dll")
    poly = tp.polygraphy_plugin_command("a.onnx", "a.engine", "lib.so")
    assert poly == ["polygraphy", "convert", "a.onnx", "-o", "a.engine", "--plugins", "lib.so", "--fp16"]
    cfg_cmd, build_cmd = tp.cmake_commands(Path("/b"), tensorrt_root="/opt/TensorRT-10")
    assert (
        cfg_cmd[:5] == ["cmake", "-S", str(tp.SOURCE_DIR), "-B", "/b"]
        and cfg_cmd[-1] == "-DTENSORRT_ROOT=/opt/TensorRT-10"
    )
    assert build_cmd == ["cmake", "--build", "/b"]


needs_cuda_build = pytest.mark.skipif(
    shutil.which("cmake") is None or shutil.which("nvcc") is None or shutil.which("ninja") is None,
    reason="cmake, ninja and nvcc are needed",
)
# CMake's CUDA compiler detection alone takes 10-30 s on a loaded 2-core host
cmake_slow = pytest.mark.slow


@cmake_slow
@needs_cuda_build
@pytest.mark.skipif(HAS_TRT, reason="TensorRT is installed here: the plugin target is not skipped")
def test_cmake_skips_the_plugin_without_tensorrt_and_still_compiles_the_kernels(tmp_path, monkeypatch):
    monkeypatch.delenv("TENSORRT_ROOT", raising=False)
    built = tp.build_plugin_library(tmp_path / "b")
    assert built.skipped and built.library is None
    assert "ailab_trt_plugins: skipped, TensorRT not found (NvInfer.h and libnvinfer)" in built.log
    objs = list((tmp_path / "b").rglob("act_launch.cu.o"))
    assert len(objs) == 1 and objs[0].stat().st_size > 0  # the kernels compiled with nvcc


@cmake_slow
@needs_cuda_build
def test_cmake_adds_the_plugin_target_where_tensorrt_is_found(tmp_path):
    """A TensorRT layout with an empty header and library: enough for CMake's find_path/find_library, so this
    checks the configure branch only (nothing is compiled against it)."""
    root = tmp_path / "TensorRT"
    (root / "include").mkdir(parents=True)
    (root / "lib").mkdir()
    (root / "include" / "NvInfer.h").write_text("")
    (root / "lib" / "libnvinfer.so").write_bytes(b"")
    cfg = tp.cmake_commands(tmp_path / "b", tensorrt_root=str(root))[0]
    p = subprocess.run(cfg, capture_output=True, text=True, timeout=300, check=False)
    assert p.returncode == 0, p.stderr[-2000:]
    assert f"ailab_trt_plugins: building libailab_trt_plugins.so against {root / 'include'}" in p.stdout
    assert "libailab_trt_plugins.so" in (tmp_path / "b" / "build.ninja").read_text()


def _cuda_include() -> Path | None:
    for cand in sorted(Path("/usr/local").glob("cuda*/include"), reverse=True):
        if (cand / "cuda_fp16.h").exists():
            return cand
    return None


@pytest.mark.skipif(
    importlib.util.find_spec("cuda") is None or _cuda_include() is None, reason="NVRTC bindings or CUDA headers"
)
def test_the_custom_ops_nvrtc_path_compiles_the_same_kernel_source():
    from cuda.bindings import nvrtc

    src = co.KERNEL_SOURCE.read_bytes()
    assert co.KERNEL_SOURCE == tp.SOURCE_DIR / "act_kernels.cuh"  # one source for both paths
    assert '#include "act_kernels.cuh"' in (tp.SOURCE_DIR / "act_launch.cu").read_text()
    _, prog = nvrtc.nvrtcCreateProgram(src, b"act_kernels.cu", 0, [], [])
    opts = [b"--use_fast_math", b"-arch=compute_90", b"-I" + str(_cuda_include()).encode()]
    (rc,) = nvrtc.nvrtcCompileProgram(prog, len(opts), opts)
    assert rc == nvrtc.nvrtcResult.NVRTC_SUCCESS
    _, size = nvrtc.nvrtcGetPTXSize(prog)
    ptx = b" " * size
    nvrtc.nvrtcGetPTX(prog, ptx)
    entries = set(re.findall(r"\.entry (\w+)\(", ptx.decode()))
    names = {co.kernel_name(a, d) for a in ("swish", "mish") for d in (torch.float32, torch.float16)}
    assert names == entries == {"swish_f32", "swish_f16", "mish_f32", "mish_f16"}


@pytest.mark.skipif(HAS_TRT, reason="TensorRT is installed here")
def test_tensorrt_steps_say_needs_tensorrt(tmp_path):
    with pytest.raises(TensorRTMissingError, match="needs TensorRT"):
        tp.load_plugin_library(tmp_path / "libailab_trt_plugins.so")
    with pytest.raises(TensorRTMissingError, match="needs TensorRT"):
        tp.add_plugin_layer(object(), object(), "swish")
    with pytest.raises(TensorRTMissingError, match="needs TensorRT"):
        tp.plugin_engine_rows(tmp_path, ["swish"], 2, 16, 1)


@pytest.mark.skipif(HAS_TRT, reason="TensorRT is installed here")
def test_runner_records_the_plugin_onnx_and_needs_tensorrt(tmp_path):
    from ailab.contract import Output
    from workloads.engines.experiments.custom_ops import OpParams, _tensorrt_plugins

    ctx = Context(experiment_id="d66.e4", device="cpu", quick=True, workdir=tmp_path)
    out = Output()
    _tensorrt_plugins(ctx, OpParams(parts=["serialize"], acts=["swish", "mish"]), out)
    t = {x.name: x for x in out.tables}["trt_plugin_onnx"]
    assert [r[:3] for r in t.rows] == [["swish", "AilabSwish", "ailab.trt"], ["mish", "AilabMish", "ailab.trt"]]
    assert tp.NEEDS_TENSORRT_PLUGIN in out.notes
    assert any(n.startswith("TensorRT plugin build: trtexec --staticPlugins=") for n in out.notes)
