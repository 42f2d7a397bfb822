"""The compiler-backed substitutes on the CPU (Inductor's C++ backend): slow, a compile takes half a minute here."""

from __future__ import annotations

import pytest

from ailab.contract import Context

pytestmark = pytest.mark.slow


def _cols(t):
    return [c.name for c in t.columns]


def test_dynamic_vs_bucketed_shapes_on_cpu(tmp_path):
    from workloads.engines.experiments.dynamic_shapes import ShapeParams, shape_study

    ctx = Context(experiment_id="d22.e3", device="cpu", quick=True, workdir=tmp_path)
    p = ShapeParams(
        parts=["per_batch", "bad_buckets", "stream"],
        batches=[1, 2],
        buckets=[1, 2],
        bad_buckets=[2],
        iters=3,
        stream_requests=6,
    )
    out = shape_study(ctx, p)
    per = {t.name: t for t in out.tables}
    rows = per["per_batch"].rows
    run_batch = _cols(per["per_batch"]).index("run_batch")
    assert [r[0] for r in rows] == ["dynamic", "static-b1", "dynamic", "static-b2"]
    bad = per["bad_buckets"].rows
    assert [r[_cols(per["bad_buckets"]).index("bad_bucket")] for r in bad] == [2, 2]  # batch 1 padded up to 2
    assert all(r[run_batch] >= r[1] for r in rows)
    assert "--minShapes=input:1x3x32x32" in out.notes[-1]


def test_aot_package_round_trip_switch_and_versions_on_cpu(tmp_path):
    from workloads.engines.experiments.aot_packages import AotParams, aot_study

    ctx = Context(experiment_id="d29.e4", device="cpu", quick=True, workdir=tmp_path / "w")
    ctx.workdir.mkdir()
    out = aot_study(ctx, AotParams(parts=["load", "versions", "memory"], batches=[2], iters=2))
    t = {x.name: x for x in out.tables}
    load = dict(zip(_cols(t["package_load"]), t["package_load"].rows[0], strict=True))
    assert load["max_abs_err_vs_eager"] < 1e-4 and load["size_mib"] > 0
    v = t["versions"].rows
    assert all(r[_cols(t["versions"]).index("outputs_differ_between_versions")] for r in v)
    held = [dict(zip(_cols(t["packages_loaded"]), r, strict=True)) for r in t["packages_loaded"].rows]
    assert [(h["loaded"], h["package"], h["batch"]) for h in held] == [(1, "cnn_b2.pt2", 2)]  # each package once
