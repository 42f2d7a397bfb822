"""The models-area runners (d03, d61) called as the lab calls them: a Context by keyword and the typed parameters
of their binding. Bad parameters are rejected when the catalogue loads, naming the field; quick params still run.
"""

from __future__ import annotations

import typing
from pathlib import Path
from typing import Any

import pytest
import yaml

from ailab.contract import Context, Params
from ailab.contract.params import ParamsError, validate
from ailab.contract.paths import REPO_ROOT
from ailab.curriculum.loader import check_params, runner_params_model
from ailab.runner import load_runner
from workloads.models import compress, custom_fn, folding, ortbench, quantize
from workloads.models.experiments import common, onnx_export, quantization
from workloads.models.experiments.distillation import DistillationParams
from workloads.models.experiments.ort_bench import OpsetLevelsParams, OptOffOnParams
from workloads.models.experiments.pruning import PruningParams

BINDINGS = yaml.safe_load((REPO_ROOT / "workloads/models/bindings.yaml").read_text(encoding="utf-8"))


def _quick_params(exp_id: str) -> tuple[str, Params]:
    """(runner, typed params + quick) of a binding of this area, validated as the catalogue does."""
    b = BINDINGS[exp_id]
    return b["runner"], validate(runner_params_model(b["runner"]), {**b["params"], **b.get("quick", {})})


def _run_quick(exp_id: str, tmp_path: Path) -> Any:
    """The experiment's runner on its bound quick params, as `lab run --quick` calls it."""
    runner, typed = _quick_params(exp_id)
    ctx = Context(experiment_id=exp_id, device="cpu", quick=True, workdir=tmp_path / exp_id)
    ctx.workdir.mkdir(parents=True)
    return load_runner(runner)(ctx, typed)


def test_allowed_values_match_the_library() -> None:
    assert typing.get_args(common.Level) == ortbench.LEVELS
    assert typing.get_args(onnx_export.Variant) == tuple(custom_fn.VARIANTS)
    assert typing.get_args(onnx_export.Exporter) == custom_fn.EXPORTERS
    assert typing.get_args(onnx_export.FoldExporter) == folding.FOLD_EXPORTERS
    assert typing.get_args(quantization.Method) == quantize.METHODS


@pytest.mark.parametrize(
    ("model", "values", "message"),
    [
        (OpsetLevelsParams, {"opsets": [17], "levels": ["basic", "max"], "batch": 1, "warmup": 1, "iters": 1},
         "field levels.1 = 'max': Input should be 'disabled', 'basic', 'extended' or 'all'"),
        (OptOffOnParams, {"opset": 9, "levels": ["all"], "batches": [1], "repeats": 1, "warmup": 1, "iters": 1},
         "field opset = 9: Input should be greater than or equal to 13"),
        (OpsetLevelsParams, {"opsets": [17], "levels": ["all"], "batch": True, "warmup": 1, "iters": 1},
         "field batch = True: Input should be a valid integer"),
        (PruningParams, {"methods": ["structured"], "sparsities": [0.5, 1.5], "channel_amounts": [0.5],
                         "finetune_epochs": 1, "batches": [1], "warmup": 1, "iters": 1, "rounds": 1},
         "field sparsities.1 = 1.5: Input should be less than 1"),
        (DistillationParams, {"temperature": -1, "alpha": 0.5, "epochs": 1, "seeds": [], "batches": [1],
                              "warmup": 1, "iters": 1, "rounds": 1},
         "field temperature = -1: Input should be greater than 0; field seeds = []: List should have at least 1 item"),
    ],
)  # fmt: skip
def test_bad_params_name_the_field(model: type, values: dict, message: str) -> None:
    with pytest.raises(ParamsError) as err:
        validate(model, values)
    for part in message.split("; "):  # one part per bad field
        assert part in str(err.value)


def test_a_bad_binding_fails_at_load_naming_the_field() -> None:
    """What the catalogue loader reports for d61.e2 bound with an unknown method and a typo'd key."""
    b = BINDINGS["d61.e2"]
    bad = {**b["params"], "methods": ["torch_static", "fp8"]}
    assert "field methods.1 = 'fp8': Input should be 'torch_dynamic'" in check_params(b["runner"], bad, {})
    assert "field calibraton_images: unknown parameter" in check_params(
        b["runner"], b["params"], {"calibraton_images": 8}
    )


def test_every_binding_of_the_area_fits_its_runner() -> None:
    for exp_id, b in BINDINGS.items():
        assert check_params(b["runner"], b["params"], b.get("quick", {})) is None, exp_id


def test_a_quantized_engine_missing_from_this_torch_build_is_named(tmp_path: Path, monkeypatch) -> None:
    """backend passes the model (a known engine name) but this build may lack it: the runner says so first."""
    monkeypatch.setattr(quantize, "backends", lambda: ["qnnpack"])
    monkeypatch.setattr(compress, "teacher", lambda: pytest.fail("trained before checking the engine"))
    _, typed = _quick_params("d61.e2")
    ctx = Context(experiment_id="d61.e2", device="cpu", quick=True, workdir=tmp_path)
    with pytest.raises(ValueError, match=r"params.backend 'x86': allowed \(available in this torch build\) qnnpack"):
        quantization.quantization(ctx, typed)


def test_d03_quick_runs_produce_rows(lab_tmp: Path) -> None:
    outs = {f"d03.e{i}": _run_quick(f"d03.e{i}", lab_tmp) for i in range(1, 6)}
    for eid, out in outs.items():
        assert out.tables and all(t.rows for t in out.tables), eid
    # e1: a row per (opset, level); the first level is the baseline of its opset
    e1 = outs["d03.e1"].tables[1].rows
    assert [(r[0], r[1]) for r in e1] == [(op, lv) for op in (13, 17) for lv in ("basic", "extended", "all")]
    assert all(r[-1] == 0.0 for r in e1 if r[1] == "basic")
    # e2: one dynamic-batch session served batches 1, 8 and 32, and said why there is no CUDA EP row
    e2 = outs["d03.e2"].tables[0].rows
    assert [r[1] for r in e2] == [1, 8, 32] and all(r[-1] == "ok" for r in e2)
    assert any("CUDA EP not measured" in n for n in outs["d03.e2"].notes)
    # e3: both levels, each in its own process
    assert {r[0] for r in outs["d03.e3"].tables[0].rows} == {"disabled", "all"}
    # e4: the export failure is a recorded row, not a failed experiment
    assert any(r[2] == "error" and "Couldn't export" in r[6] for r in outs["d03.e4"].tables[0].rows)


def test_d61_quick_runs_produce_rows(lab_tmp: Path) -> None:
    outs = {f"d61.e{i}": _run_quick(f"d61.e{i}", lab_tmp) for i in range(1, 6)}
    for eid, out in outs.items():
        assert out.tables and all(t.rows for t in out.tables), eid
    # e1: the dense baseline and every pruned model appear in both runtimes, structured pruning has fewer parameters
    size = outs["d61.e1"].tables[0]
    params = {(r[0], r[1]): r[4] for r in size.rows}
    assert params[("structured", 50.0)] < params[("none", 0.0)] == params[("unstructured", 90.0)]
    lat = outs["d61.e1"].tables[1]
    assert {(r[0], r[1]) for r in lat.rows} >= {("dense baseline", "torch"), ("dense baseline", "ort")}
    # e2: every method has a row, and each runtime's FP32 agrees with itself
    e2 = outs["d61.e2"].tables[0].rows
    assert len(e2) == 6 and all(r[3] == 100.0 for r in e2 if r[0] == "FP32")
    # e4: a control row plus one row per temperature, each with a verdict
    e4 = outs["d61.e4"].tables[0].rows
    assert [r[0] for r in e4] == ["control (CE only)", "1", "4"]
    assert all(r[-1] in {"within noise", "better", "worse"} for r in e4[1:])
    # e5: speedups are relative to the FP32 CNN of the same runtime
    e5 = outs["d61.e5"].tables[0]
    cols = [c.name for c in e5.columns]
    for r in e5.rows:
        if r[0] == "FP32 baseline CNN":
            assert r[cols.index("speedup batch 1")] == 1.0 and r[cols.index("speedup batch 64")] == 1.0
