"""Swish/Mish custom ops on the CPU: registration, shapes, fake kernels, export round trip, bad input."""

from __future__ import annotations

import pytest
import torch

from ailab.contract import Context
from workloads.engines import custom_ops as co
from workloads.engines.experiments.custom_ops import OpParams, op_study


@pytest.mark.parametrize("shape", [(0,), (1,), (3, 5, 7), (2, 1025)])
def test_ops_match_native_activations_on_any_shape(shape):
    x = torch.randn(*shape)
    assert torch.allclose(co.swish(x, "reference"), torch.nn.functional.silu(x), atol=1e-6)
    assert torch.allclose(co.mish(x, "reference"), torch.nn.functional.mish(x), atol=1e-6)


def test_unknown_impl_is_named():
    with pytest.raises(co.CustomOpError, match="field impl = 'cudnn'"):
        co.swish(torch.randn(4), "cudnn")
    with pytest.raises(co.CustomOpError, match="field act = 'gelu'"):
        co.ActBlock("gelu", "triton")


def test_fake_kernel_lets_export_keep_the_op_with_a_dynamic_batch(tmp_path):
    blk = co.ActBlock("mish", "triton", dim=16)
    ep = torch.export.export(blk, (torch.randn(4, 16),), dynamic_shapes=({0: torch.export.Dim("b", min=1, max=64)},))
    assert any("ailab.mish" in str(n.target) for n in ep.graph.nodes)
    torch.export.save(ep, str(tmp_path / "a.pt2"))
    x = torch.randn(9, 16)
    assert torch.allclose(torch.export.load(str(tmp_path / "a.pt2")).module()(x), blk(x))


def test_runner_shapes_part_on_cpu(tmp_path):
    ctx = Context(experiment_id="d12.e3", device="cpu", quick=True, workdir=tmp_path)
    out = op_study(ctx, OpParams(parts=["shapes"], acts=["swish"]))
    row = out.tables[0].rows[0]
    cols = [c.name for c in out.tables[0].columns]
    assert row[cols.index("shapes_correct")] == row[cols.index("shapes_checked")] == 7
