"""Precision plans on the CPU: INT8 W8A8 linears stay close to FP32; FP8 refused off CUDA; rows carry ratios."""

from __future__ import annotations

import pytest
import torch

from workloads.engines.precision import Int8Linear, PrecisionError, check, quantized_layers, with_precision
from workloads.engines.precision_bench import mlp_rows


def test_int8_linear_matches_fp32_within_quantisation_error():
    torch.manual_seed(0)
    lin = torch.nn.Linear(64, 32)
    x = torch.randn(20, 64)
    q = Int8Linear(lin, out_dtype=torch.float32)
    ref = lin(x)
    err = (q(x) - ref).abs().max() / ref.abs().max()
    assert err < 0.03  # 8-bit per-row/per-channel scales
    assert q(x.reshape(4, 5, 64)).shape == (4, 5, 32)


def test_fp8_needs_cuda_and_unknown_precision_is_named():
    with pytest.raises(PrecisionError, match="FP8 GEMMs need a CUDA device"):
        check("fp8_row", "cpu")
    with pytest.raises(PrecisionError, match="field precision = 'int4'"):
        check("int4", "cpu")


def test_mixed_plan_keeps_first_and_last_layer_in_16_bit():
    m = torch.nn.Sequential(torch.nn.Linear(16, 32), torch.nn.Linear(32, 32), torch.nn.Linear(32, 16))
    full, _ = with_precision(m, "int8", "cpu")
    mixed, _ = with_precision(m, "mixed_int8_fp16", "cpu")
    assert quantized_layers(full) == 3 and quantized_layers(mixed) == 1


def test_mlp_rows_give_accuracy_beside_speed_and_fp32_ratio():
    rows = mlp_rows(["fp32", "bf16", "int8"], "cpu", width=64, epochs=3, batch=32, iters=3)
    by = {r.precision: r for r in rows}
    assert by["fp32"].speedup_vs_fp32 == 1.0 and by["fp32"].top1_agree_pct == 100.0
    assert by["fp32"].accuracy_pct > 50  # three epochs on digits already beats chance (10 %) by far
    assert abs(by["int8"].accuracy_pct - by["fp32"].accuracy_pct) < 5
    assert by["int8"].quantized_layers == 2  # the 10-wide output layer stays 16-bit (N not a multiple of 8)
