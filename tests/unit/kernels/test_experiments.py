"""Runners skip without a GPU, bindings resolve and validate, bad parameters are refused, derived results say so."""

from __future__ import annotations

from pathlib import Path

import pytest

from ailab.contract import Context, Skip
from ailab.contract.params import ParamsError, validate
from ailab.curriculum import catalogue
from workloads.kernels import tools
from workloads.kernels.experiments import derived_gemm, harness_cases, ncu_profile, sanitizer, timelines


def ctx(tmp_path: Path, device: str = "cpu", **kw: object) -> Context:
    return Context(experiment_id="d08.e1", device=device, quick=True, workdir=tmp_path, **kw)


@pytest.mark.parametrize(
    "call",
    [
        lambda c: harness_cases.harness_cases(
            c, harness_cases.CasesParams(binary="bench_memory", cases=["vector_add_variants"])
        ),
        sanitizer.out_of_bounds,
        lambda c: ncu_profile.ncu_profile(c, ncu_profile.ProfileParams(binary="bench_gemm", kernel_regex="sgemm_")),
        timelines.streams_timeline,
        timelines.graphs_timeline,
    ],
)
def test_runners_skip_without_cuda_with_the_documented_reason(call, tmp_path: Path) -> None:
    with pytest.raises(Skip) as err:
        call(ctx(tmp_path))
    assert str(err.value) == tools.NO_CUDA


def test_docs_quote_the_skip_reasons_the_code_writes(monkeypatch: pytest.MonkeyPatch) -> None:
    """docs/kernels.md quotes what a GPU-less host records (the lab's needs check) and the runners' own reason."""
    from ailab import host
    from ailab.curriculum import Need

    monkeypatch.setattr(host, "gpus", lambda: [])
    (no_gpu,) = host.unmet([Need.gpu], "cpu")
    docs = (Path(__file__).parents[3] / "docs" / "kernels.md").read_text(encoding="utf-8")
    assert f'"{no_gpu}"' in docs
    assert f'"{tools.NO_CUDA}"' in docs


def test_unknown_binary_is_refused() -> None:
    from workloads.kernels import build

    with pytest.raises(ValueError, match="binary 'bench_x': allowed values are bench_memory"):
        build.binary("bench_x")


def test_every_kernel_binding_is_on_the_new_layout_and_needs_a_gpu() -> None:
    bound = [e for e in catalogue().experiments.values() if e.binding and "workloads.kernels" in e.binding.runner]
    assert len(bound) >= 40
    for e in bound:
        assert e.binding.runner.startswith("workloads.kernels.experiments."), e.id
        assert "gpu" in [n.value for n in e.binding.needs], e.id


def test_profile_params_refuse_a_bad_regex_and_an_unknown_case() -> None:
    with pytest.raises(ParamsError, match=r"kernel_regex '\(' is not a regular expression"):
        validate(ncu_profile.ProfileParams, {"binary": "bench_gemm", "kernel_regex": "("})
    with pytest.raises(ParamsError, match=r"case 'd11\.e5' is not a case of bench_gemm"):
        validate(ncu_profile.ProfileParams, {"binary": "bench_gemm", "case": "d11.e5", "kernel_regex": "x"})
    with pytest.raises(ParamsError, match=r"field launch_count = 0"):
        validate(ncu_profile.ProfileParams, {"binary": "bench_gemm", "kernel_regex": "x", "launch_count": 0})


def _sweep_record() -> dict:
    cols = [{"name": "kernel", "unit": ""}, {"name": "N", "unit": ""}, {"name": "throughput", "unit": "TFLOP/s"}]
    rows = [["cuBLAS SGEMM", 2048, 40.0], ["cuBLAS SGEMM", 4096, 50.0], ["double buffering", 4096, 38.0]]
    return {
        "status": "ok",
        "tables": [{"name": "GEMM kernels vs cuBLAS", "columns": cols, "rows": rows, "caption": ""}],
        "notes": ["Target best FP32 SGEMM >= 70% ...", "something else"],
    }


def test_derived_gemm_re_presents_one_size_of_the_source_and_says_so(tmp_path: Path) -> None:
    c = ctx(tmp_path, device="cuda", result_of=lambda _: _sweep_record())
    out = derived_gemm.gemm_at_size(c, derived_gemm.DerivedGemmParams(source="d11.e1", n=4096))
    assert out.derived_from == ["d11.e1"]
    assert [r[1] for r in out.tables[0].rows] == [4096, 4096]
    assert out.notes[0].startswith("Derived: the rows of d11.e1's run at N=4096")
    assert "Target best FP32 SGEMM >= 70% ..." in out.notes and "something else" not in out.notes


def test_derived_gemm_skips_until_its_source_is_measured(tmp_path: Path) -> None:
    with pytest.raises(Skip, match=r"derived from d11\.e1, which has no measured result"):
        derived_gemm.gemm_at_size(ctx(tmp_path, device="cuda"), derived_gemm.DerivedGemmParams(source="d11.e1", n=1))


def test_derived_gemm_params_refuse_a_bad_source() -> None:
    with pytest.raises(ParamsError, match=r"field source = 'd11'"):
        validate(derived_gemm.DerivedGemmParams, {"source": "d11", "n": 4096})
