"""ORT helpers: node counting, optimisation levels, latency statistics and isolated peak-RSS runs."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

from workloads.models import folding, ortbench


def _graph(path: Path) -> Path:
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [None, 4])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [None, 4])
    nodes = [helper.make_node("Relu", ["x"], ["a"]), helper.make_node("Relu", ["a"], ["b"])]
    nodes.append(helper.make_node("Identity", ["b"], ["y"]))
    model = helper.make_model(helper.make_graph(nodes, "g", [x], [y]), opset_imports=[helper.make_opsetid("", 17)])
    onnx.save(model, str(path))
    return path


def test_op_counts_and_formatting(tmp_path: Path) -> None:
    counts = ortbench.op_counts(_graph(tmp_path / "g.onnx"))
    assert counts == {"Relu": 2, "Identity": 1}
    assert ortbench.fmt_ops(counts) == "Relu×2, Identity×1"


def test_basic_level_removes_identity(tmp_path: Path) -> None:
    src = _graph(tmp_path / "g.onnx")
    assert sum(ortbench.optimized_counts(src, "disabled", tmp_path / "d.onnx").values()) == 3
    assert ortbench.optimized_counts(src, "basic", tmp_path / "b.onnx") == {"Relu": 2}


def test_extended_level_fuses_gemm_and_relu(default_model: Path, tmp_path: Path) -> None:
    before = ortbench.optimized_counts(default_model, "basic", tmp_path / "b.onnx")
    after = ortbench.optimized_counts(default_model, "extended", tmp_path / "e.onnx")
    assert before == {"Gemm": 3, "Relu": 2, "Flatten": 1}
    assert after == {"com.microsoft:FusedGemm": 2, "Gemm": 1, "Flatten": 1}


def test_exporter_constant_folding_removes_nodes(trained, tmp_path: Path) -> None:
    m = folding.StandardisedMLP(trained.model, 0.3, 0.4)
    off = folding.export_folding(m, tmp_path / "off.onnx", "torchscript", fold=False)
    on = folding.export_folding(m, tmp_path / "on.onnx", "torchscript", fold=True)
    assert sum(on.values()) < sum(off.values())


def test_stats_percentiles_over_all_samples() -> None:
    s = ortbench.Stats.of(np.arange(1, 101) * 1000, batch=4)  # 1..100 µs
    assert (s.calls, s.p50_us, s.mean_us) == (100, pytest.approx(50.5), pytest.approx(50.5))
    assert s.p95_us == pytest.approx(95.05)
    assert s.samples_per_s == pytest.approx(4 / 50.5e-6)


def test_unknown_level_is_rejected(default_model: Path) -> None:
    with pytest.raises(ValueError, match=r"level 'max': allowed disabled, basic, extended, all"):
        ortbench.session(default_model, "max")


def test_isolated_run_reports_memory_of_its_own_process(default_model: Path) -> None:
    r = ortbench.measure_isolated(default_model, "all", batch=4, warmup=2, iters=5)
    assert r.stats["calls"] == 5 and r.stats["batch"] == 4
    # the child's baseline must not inherit this (torch-loaded) process's peak: VmHWM, not ru_maxrss
    assert 0 < r.rss_before_session_mib <= r.peak_rss_mib < ortbench.peak_rss_mib()
