"""Runners skip without a GPU, bindings resolve, bad parameters are refused, d24's bandwidth definitions."""

from __future__ import annotations

from pathlib import Path

import pytest

from ailab.contract import Context, Skip
from ailab.curriculum import catalogue
from workloads.kernels import experiments
from workloads.parallel import busbw
from workloads.parallel import experiments as parallel


def ctx(tmp_path: Path, device: str = "cpu", **params: object) -> Context:
    return Context("d08.e1", device, quick=True, workdir=tmp_path, params=dict(params))


@pytest.mark.parametrize(
    "runner", [experiments.bench, experiments.sanitizer, experiments.profile, parallel.collectives]
)
def test_runners_skip_without_cuda(runner, tmp_path: Path) -> None:
    with pytest.raises(Skip, match="needs"):
        runner(ctx(tmp_path, binary="bench_memory", cases=["vector_add_variants"]))


def test_bench_without_binary_is_an_error_naming_the_params(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="params binary and cases are required"):
        experiments.bench(ctx(tmp_path, device="cuda"))


def test_unknown_binary_is_refused() -> None:
    from workloads.kernels import build

    with pytest.raises(ValueError, match="binary 'bench_x': allowed values are bench_memory"):
        build.binary("bench_x")


def test_every_kernel_binding_names_a_known_binary_and_needs_a_gpu() -> None:
    from workloads.kernels.build import BINARIES

    bound = [e for e in catalogue().experiments.values() if e.binding and "workloads.kernels" in e.binding.runner]
    assert len(bound) >= 35
    for e in bound:
        assert "gpu" in [n.value for n in e.binding.needs], e.id
        if "binary" in e.binding.params:
            assert e.binding.params["binary"] in BINARIES, e.id


@pytest.mark.parametrize(
    ("op", "n", "factor"),
    [
        ("all_reduce", 2, 1.0),
        ("all_reduce", 4, 1.5),
        ("all_reduce", 8, 1.75),
        ("all_gather", 4, 0.75),
        ("reduce_scatter", 8, 0.875),
        ("all_reduce", 1, 0.0),
    ],
)
def test_bus_bandwidth_factors_are_nccl_tests(op: str, n: int, factor: float) -> None:
    assert busbw.bus_factor(op, n) == pytest.approx(factor)


def test_bus_bandwidth_refuses_unknown_op() -> None:
    with pytest.raises(ValueError, match="op 'broadcast': allowed values are all_reduce, all_gather, reduce_scatter"):
        busbw.bus_factor("broadcast", 2)


def test_busbw_of_one_gib_in_one_ms() -> None:
    assert busbw.busbw_gbs("all_reduce", 2, 1 << 30, 1e-3) == pytest.approx((1 << 30) / 1e6)


def _sweep_record() -> dict:
    cols = [{"name": "kernel", "unit": ""}, {"name": "N", "unit": ""}, {"name": "throughput", "unit": "TFLOP/s"}]
    rows = [["cuBLAS SGEMM", 2048, 40.0], ["cuBLAS SGEMM", 4096, 50.0], ["double buffering", 4096, 38.0]]
    return {
        "status": "ok",
        "tables": [{"name": "GEMM kernels vs cuBLAS", "columns": cols, "rows": rows, "caption": ""}],
        "notes": ["Target best FP32 SGEMM >= 70% ...", "something else"],
    }


def test_derived_gemm_re_presents_one_size_of_the_source_and_says_so(tmp_path: Path) -> None:
    c = Context("d64.e5", "cuda", False, tmp_path, result_of=lambda _: _sweep_record())
    c.params = {"source": "d11.e1", "n": 4096}
    out = experiments.derived_gemm(c)
    assert out.derived_from == ["d11.e1"]
    assert [r[1] for r in out.tables[0].rows] == [4096, 4096]
    assert out.notes[0].startswith("Derived: the rows of d11.e1's run at N=4096")
    assert "Target best FP32 SGEMM >= 70% ..." in out.notes and "something else" not in out.notes


def test_derived_gemm_skips_until_its_source_is_measured(tmp_path: Path) -> None:
    c = Context("d64.e5", "cuda", False, tmp_path, params={"source": "d11.e1", "n": 4096})
    with pytest.raises(Skip, match=r"derived from d11\.e1, which has no measured result"):
        experiments.derived_gemm(c)
