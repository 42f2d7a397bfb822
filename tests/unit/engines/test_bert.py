"""BERT from a config on the CPU: ONNX export matches PyTorch, and the runner's baseline row."""

from __future__ import annotations

from ailab.contract import Context
from workloads.engines.experiments.bert import BertParams, bert_study


def test_onnx_baseline_of_a_tiny_bert_matches_pytorch(tmp_path):
    ctx = Context(experiment_id="d19.e1", device="cpu", quick=True, workdir=tmp_path)
    out = bert_study(ctx, BertParams(parts=["onnx_baseline"], shape="tiny", seq=16, iters=3, ort_threads=1))
    t = out.tables[0]
    row = dict(zip([c.name for c in t.columns], t.rows[0], strict=True))
    assert row["max_abs_err_vs_torch"] < 1e-4 and row["p50_ms"] > 0
    assert out.substitute is not None and out.substitute.instead_of == "TensorRT"


def test_marker_task_trains_and_int8_keeps_accuracy(tmp_path):
    ctx = Context(experiment_id="d19.e5", device="cpu", quick=True, workdir=tmp_path)
    out = bert_study(ctx, BertParams(parts=["fp16_vs_int8"], shape="tiny", batch=2, seq=16, train_steps=5, iters=2))
    rows = out.tables[0].rows
    assert [r[0] for r in rows] == ["fp32", "int8"]
