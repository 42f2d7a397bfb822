"""Memory per compiled variant (d22.e4, d33.e4): variant specs and their validation, row building, and the
one-process-per-variant plumbing. The plumbing tests swap the measurement for a fake one (AILAB_VARIANT_MEASURE
pointing at a module written to tmp_path): a GPU's counters cannot exist here; the real measurement runs once on
the CPU for the eager model (no compile, a few seconds)."""

from __future__ import annotations

import json
import os
import textwrap
from pathlib import Path

import pytest

from ailab.contract import Context
from workloads.engines.variant_memory import (
    VariantSpecError,
    check_spec,
    measure_all,
    memory_rows,
    run_in_subprocess,
    variant_name,
    variant_specs,
)

FAKE = """
import json, os, sys

def measure(spec):
    # a stand-in for the GPU counters: numbers derived from the spec, plus what the child process saw
    b = spec.get("bucket") or max(spec["batches"])
    if spec["kind"] == "static" and b == 13:
        raise RuntimeError("boom in the child")
    return {
        "variant": ("static-b%d" % b) if spec["kind"] == "static" else spec["kind"],
        "device": "cuda",
        "batches_run": [b],
        "first_call_s": 0.5,
        "warmup_s": 0.1,
        "weights_mib": 2.0,
        "peak_allocated_mib": 10.0 * b,
        "retained_allocated_mib": 0.0,
        "peak_reserved_mib": 20.0 * b,
        "device_used_mib": 100.0 + b if spec["kind"] != "eager" else 50.0,
        "host_rss_delta_mib": 1.0,
        "pid": os.getpid(),
        "cache": os.environ.get("TORCHINDUCTOR_CACHE_DIR"),
    }
"""


@pytest.fixture
def fake_env(tmp_path, monkeypatch):
    mod = tmp_path / "fakemeasure"
    mod.mkdir()
    (mod / "fake_vm_measure.py").write_text(textwrap.dedent(FAKE))
    monkeypatch.setenv("AILAB_VARIANT_MEASURE", "fake_vm_measure:measure")
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(mod), str(Path.cwd()), os.environ.get("PYTHONPATH", "")]))
    return tmp_path


def test_specs_cover_eager_dynamic_each_bucket_then_cudagraph_buckets():
    specs = variant_specs("cuda", False, [1, 16, 64], [1, 16, 64], cudagraph_buckets=[16])
    assert [variant_name(s) for s in specs] == [
        "eager",
        "dynamic",
        "static-b1",
        "static-b16",
        "static-b64",
        "static-b16+cudagraphs",
    ]
    assert specs[1]["batches"] == [1, 16, 64] and specs[-1]["mode"] == "reduce-overhead"


def test_bad_specs_name_the_field():
    good = {"kind": "static", "bucket": 4, "device": "cuda", "batches": [1]}
    assert check_spec(good) is good
    with pytest.raises(VariantSpecError, match="field kind = 'jit': allowed eager, dynamic, static"):
        check_spec({**good, "kind": "jit"})
    with pytest.raises(VariantSpecError, match="field bucket = 0"):
        check_spec({**good, "bucket": 0})
    with pytest.raises(VariantSpecError, match="field mode = 'max-autotune'"):
        check_spec({**good, "mode": "max-autotune"})
    with pytest.raises(VariantSpecError, match="CUDA graphs need device cuda"):
        variant_specs("cpu", True, [1], [1], cudagraph_buckets=[1])
    with pytest.raises(VariantSpecError, match="field batches = \\[\\]"):
        check_spec({"kind": "dynamic", "device": "cpu", "batches": []})
    with pytest.raises(VariantSpecError, match="field device = 'tpu'"):
        check_spec({**good, "device": "tpu"})


def test_rows_keep_spec_order_and_subtract_the_eager_row():
    results = [
        {"variant": "eager", "device": "cuda", "first_call_s": 0.01, "warmup_s": 0.0, "host_rss_delta_mib": 1.0}
        | dict.fromkeys(("weights_mib", "peak_allocated_mib", "retained_allocated_mib", "peak_reserved_mib"), 1.0)
        | {"device_used_mib": 40.0},
        {"variant": "static-b4", "device": "cuda", "first_call_s": 2.0, "warmup_s": 0.1, "host_rss_delta_mib": 9.0}
        | dict.fromkeys(("weights_mib", "peak_allocated_mib", "retained_allocated_mib", "peak_reserved_mib"), 3.0)
        | {"device_used_mib": 106.0},
    ]
    rows = memory_rows(results)
    assert [r["variant"] for r in rows] == ["eager", "static-b4"]
    assert rows[0]["device_used_over_eager_mib"] == 0.0 and rows[1]["device_used_over_eager_mib"] == 66.0
    assert rows[1]["compile_s"] == 2.0 and rows[1]["peak_reserved_mib"] == 3.0
    cpu = memory_rows(
        [{"variant": "eager", "device": "cpu", "first_call_s": 0.1, "warmup_s": 0.2, "host_rss_delta_mib": 5.0}]
    )
    assert list(cpu[0]) == ["variant", "compile_s", "warmup_s", "host_rss_delta_mib"]  # no device columns on CPU
    with pytest.raises(ValueError, match="no variant results"):
        memory_rows([])


def test_each_variant_runs_in_its_own_process_with_its_own_cache(fake_env):
    specs = variant_specs("cuda", True, [1, 4], [1, 4])
    results = measure_all(specs, fake_env / "work")
    assert [r["variant"] for r in results] == ["eager", "dynamic", "static-b1", "static-b4"]
    assert len({r["pid"] for r in results}) == 4 and os.getpid() not in {r["pid"] for r in results}
    assert [Path(r["cache"]).parent.name for r in results] == ["eager", "dynamic", "static-b1", "static-b4"]
    assert all(r["process_wall_s"] > 0 for r in results)
    assert memory_rows(results)[3]["device_used_over_eager_mib"] == 54.0  # (100 + 4) - 50, from the fake


def test_a_failing_child_is_reported_with_its_variant_and_stderr(fake_env):
    spec = variant_specs("cuda", True, [1], [13])[-1]
    with pytest.raises(RuntimeError, match=r"(?s)variant static-b13 failed \(rc 1\).*boom in the child"):
        run_in_subprocess(spec)


def test_a_hanging_child_is_stopped(fake_env, monkeypatch):
    (fake_env / "fakemeasure" / "fake_vm_hang.py").write_text("import time\ndef measure(spec):\n    time.sleep(60)\n")
    monkeypatch.setenv("AILAB_VARIANT_MEASURE", "fake_vm_hang:measure")
    with pytest.raises(RuntimeError, match="variant eager: no result within 3 s"):
        run_in_subprocess(variant_specs("cpu", True, [1], [1])[0], timeout_s=3)


def test_runner_variant_memory_part_tabulates_fresh_process_results(fake_env):
    from workloads.engines.experiments.dynamic_shapes import ShapeParams, shape_study

    ctx = Context(experiment_id="d33.e4", device="cpu", quick=True, workdir=fake_env / "w")
    ctx.workdir.mkdir()
    out = shape_study(ctx, ShapeParams(parts=["variant_memory"], batches=[1, 4], buckets=[1, 4], cudagraph_buckets=[4]))
    t = {x.name: x for x in out.tables}["variant_memory"]
    assert [r[0] for r in t.rows] == ["eager", "dynamic", "static-b1", "static-b4"]
    cols = [c.name for c in t.columns]
    assert cols[-2:] == ["device_used_over_eager_mib", "host_rss_delta_mib"]
    assert dict(zip(cols, t.rows[2], strict=True))["peak_reserved_mib"] == 20.0
    assert "own process" in t.caption and any("variant_memory counts" in n for n in out.notes)
    assert "cudagraph_buckets [4] left out: CUDA graphs need a GPU" in out.notes  # the CPU run drops them


def test_real_measurement_of_the_eager_model_on_cpu(tmp_path):
    """The measurement itself (no fake), eager on the CPU: no compile, so a few seconds."""
    r = run_in_subprocess(variant_specs("cpu", True, [1, 2], [2])[0], cache_dir=tmp_path / "c")
    assert r["variant"] == "eager" and r["batches_run"] == [1, 2] and r["first_call_s"] > 0
    assert "device_used_mib" not in r and json.dumps(r)


def _has_cuda() -> bool:
    import torch

    return torch.cuda.is_available()


@pytest.mark.gpu
@pytest.mark.skipif(not _has_cuda(), reason="needs an NVIDIA GPU")
def test_a_static_variant_on_the_gpu_grows_the_pool_from_an_empty_process(tmp_path):
    """On a GPU host only: the fresh process sees the variant's own pool (what the single-process run missed)."""
    r = run_in_subprocess(variant_specs("cuda", True, [1, 4], [4])[-1], cache_dir=tmp_path / "c")
    assert r["variant"] == "static-b4" and r["weights_mib"] > 0
    assert r["peak_reserved_mib"] > 0 and r["device_used_mib"] > 0 and r["baseline_used_mib"] > 0
