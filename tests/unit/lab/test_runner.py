"""The runner: selections, needs checks, and ok / failed / skipped results stored with provenance."""

from __future__ import annotations

import functools
import json
from pathlib import Path

import pytest

from ailab.contract.params import ParamsError
from ailab.curriculum import Binding, Need, catalogue, load_catalogue
from ailab.results import load_day, provenance
from ailab.results.store import load_result
from ailab.runner import PLANNED, SelectionError, check_overrides, parse_overrides, resolve, run_one

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures"


@pytest.fixture
def fake_runners(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.syspath_prepend(str(FIXTURES))


@functools.cache
def _days_only():
    """The curriculum without importing bound runners: these tests bind their own fake runners."""
    return load_catalogue(check_runners=False)


def bound(exp_id: str, runner: str, needs: list[Need] | None = None, **params):
    exp = _days_only().experiments[exp_id]
    return exp.model_copy(
        update={
            "binding": Binding(
                runner=f"fake_experiments:{runner}", params=params, needs=needs or [], quick={"batches": [1]}
            )
        }
    )


def test_resolve_week_day_and_experiment() -> None:
    assert len(resolve("week01")) == 35
    assert [e.id for e in resolve("d03")] == [f"d03.e{i}" for i in range(1, 6)]
    assert [e.id for e in resolve("d3.e1")] == ["d03.e1"]
    assert [e.id for e in resolve("d03.e1,d03,w1")][:2] == ["d03.e1", "d03.e2"]
    assert len(resolve("d03.e1,d03")) == 5  # no duplicates


@pytest.mark.parametrize(
    ("selection", "message"),
    [
        ("d99", "unknown day 'd99' (d01–d90); did you mean"),
        ("d03.e9", "unknown experiment 'd03.e9'"),
        ("week14", "unknown week 'week14' (week01–week13)"),
        ("banana", "cannot read selection 'banana'"),
    ],
)
def test_resolve_rejects_unknown_selections(selection: str, message: str) -> None:
    with pytest.raises(SelectionError) as err:
        resolve(selection)
    assert message in str(err.value)


def test_ok_result_is_stored_with_tables_and_provenance(lab_tmp: Path, fake_runners: None) -> None:
    prov = provenance.collect()
    out = run_one(bound("d03.e1", "ok", scale=2, batches=[1, 8, 32]), "cpu", False, prov)
    assert out.status == "ok"
    data = json.loads(out.path.read_text())
    assert out.path == lab_tmp / "results" / "d03" / "d03.e1.cpu.json"
    assert data["params"] == {"scale": 2, "batches": [1, 8, 32]}
    assert [c["unit"] for c in data["tables"][0]["columns"]] == ["", "ms", "req/s"]
    assert len(data["tables"][0]["rows"]) == 3
    p = data["provenance"]
    assert {"git", "host", "cpu", "python", "packages", "started_utc", "ended_utc"} <= set(p)
    assert len(p["git"]["commit"]) == 40 and isinstance(p["git"]["dirty"], bool)


def test_quick_overrides_params(lab_tmp: Path, fake_runners: None) -> None:
    out = run_one(bound("d03.e1", "ok", batches=[1, 8, 32]), "cpu", True, provenance.collect())
    assert json.loads(out.path.read_text())["params"]["batches"] == [1]


def test_failing_experiment_is_recorded_with_its_error(lab_tmp: Path, fake_runners: None) -> None:
    out = run_one(bound("d03.e2", "boom"), "cpu", False, provenance.collect())
    assert out.status == "failed"
    data = json.loads(out.path.read_text())
    assert data["reason"] == "RuntimeError: the model file is corrupt"
    assert "Traceback" in data["traceback"]


def test_runner_returning_wrong_type_fails_clearly(lab_tmp: Path, fake_runners: None) -> None:
    out = run_one(bound("d03.e2", "not_output"), "cpu", False, provenance.collect())
    assert out.status == "failed" and "returned dict, expected Output" in out.reason


def test_unmet_need_is_recorded_as_skipped_with_reason(
    lab_tmp: Path, fake_runners: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A GPU cannot exist in CI; AILAB_HIDE_GPU makes the probe report none even on a GPU host."""
    monkeypatch.setenv("AILAB_HIDE_GPU", "1")
    from ailab import host

    host.gpus.cache_clear()
    out = run_one(bound("d08.e1", "ok", needs=[Need.gpu]), "cpu", False, provenance.collect())
    cuda = run_one(bound("d08.e2", "ok"), "cuda", False, provenance.collect())
    host.gpus.cache_clear()
    assert out.status == "skipped"
    assert "needs a GPU (none found)" in out.reason
    assert json.loads(out.path.read_text())["status"] == "skipped"
    # --device cuda on a host without CUDA is a skip, never a failure, whatever the binding's needs say
    assert (cuda.status, cuda.reason) == ("skipped", "asked for --device cuda, but this host has no CUDA GPU")


def test_experiment_can_skip_itself(lab_tmp: Path, fake_runners: None) -> None:
    out = run_one(bound("d03.e3", "skip_me"), "cpu", False, provenance.collect())
    assert (out.status, out.reason) == ("skipped", "perf_analyzer binary not found")


def test_planned_experiment_leaves_no_file(lab_tmp: Path) -> None:
    exp = catalogue().experiments["d90.e5"].model_copy(update={"binding": None})
    out = run_one(exp, "cpu", False, provenance.collect())
    assert (out.status, out.reason, out.path) == ("skipped", PLANNED, None)
    assert load_day("d90", lab_tmp / "results") == []


def test_gpu_results_do_not_overwrite_cpu_results() -> None:
    prov = {"gpus": [{"index": 0, "name": "NVIDIA H100 80GB HBM3", "memory_mib": 81559}]}
    assert provenance.host_class(prov, "cuda") == "h100"
    assert provenance.host_class(prov, "cpu") == "cpu"
    assert provenance.host_class({"gpus": []}, "cuda") == "cpu"
    two = {"gpus": prov["gpus"] * 2}
    assert provenance.host_class(two, "cuda", multi_gpu=True) == "h100x2"
    assert provenance.host_class(two, "cuda") == "h100"


def test_a_measured_result_is_never_replaced_by_a_skip_or_a_failure(lab_tmp: Path, fake_runners: None) -> None:
    prov = provenance.collect()
    first = run_one(bound("d03.e1", "ok"), "cpu", False, prov)
    measured = first.path.read_text()
    for runner in ("skip_me", "boom"):
        again = run_one(bound("d03.e1", runner), "cpu", False, prov)
        assert again.status in ("skipped", "failed")
        assert again.kept == first.path and first.path.read_text() == measured
        assert again.path == lab_tmp / "state" / "attempts" / "d03" / "d03.e1.cpu.json"
        assert json.loads(again.path.read_text())["status"] == again.status
    smoke = run_one(bound("d03.e1", "ok"), "cpu", True, prov)  # a quick run is kept beside a full one too
    assert smoke.status == "ok" and smoke.kept == first.path and first.path.read_text() == measured
    newer = run_one(bound("d03.e1", "ok", batches=[4]), "cpu", False, prov)  # a new measurement does replace it
    assert newer.path == first.path and json.loads(first.path.read_text())["params"]["batches"] == [4]


def test_substitute_and_derived_results_say_so(lab_tmp: Path, fake_runners: None) -> None:
    prov = provenance.collect()
    sub = json.loads(run_one(bound("d03.e2", "stand_in"), "cpu", False, prov).path.read_text())
    assert sub["substitute"] == {
        "instead_of": "DCGM exporter",
        "used": "the lab's NVML exporter",
        "why": "no DCGM here",
    }
    early = run_one(bound("d03.e3", "derived"), "cpu", False, prov)
    assert early.status == "skipped" and "derived from d03.e1, which has no measured result for cpu" in early.reason
    run_one(bound("d03.e1", "ok"), "cpu", False, prov)
    der = json.loads(run_one(bound("d03.e4", "derived"), "cpu", False, prov).path.read_text())
    assert der["status"] == "ok" and der["derived_from"] == ["d03.e1"]


def test_params_are_typed_and_overrides_are_checked_before_anything_runs(lab_tmp: Path, fake_runners: None) -> None:
    assert parse_overrides(["scale=0.5", "batches=[2, 4]", "name=grpc"]) == {
        "scale": 0.5,
        "batches": [2, 4],
        "name": "grpc",
    }
    with pytest.raises(ParamsError, match="expected name=value"):
        parse_overrides(["scale"])
    exps = [bound("d03.e1", "ok")]
    with pytest.raises(ParamsError, match=r"--set sclae: no selected experiment has such a parameter \(allowed: "):
        check_overrides(exps, {"sclae": 2}, False)
    with pytest.raises(ParamsError, match=r"d03.e1 \(fake_experiments:ok\): field scale = -1: "):
        check_overrides(exps, {"scale": -1}, False)
    assert not (lab_tmp / "results").exists()  # nothing ran, nothing was written
    out = run_one(exps[0], "cpu", False, provenance.collect(), overrides={"batches": [2]})
    assert json.loads(out.path.read_text())["params"] == {"batches": [2], "scale": 1.0}


def test_unreadable_result_files_are_named_not_fatal(lab_tmp: Path) -> None:
    day = lab_tmp / "results" / "d03"
    day.mkdir(parents=True)
    (day / "d03.e1.cpu.json").write_text('{"schema": 1, "id": "d03.e1", "sta')
    (day / "d03.e2.cpu.json").write_text("[1, 2]")
    res = {r.id: r for r in load_day("d03", lab_tmp / "results")}
    assert res["d03.e1"].status == "unreadable" and "not valid JSON (line 1" in res["d03.e1"].error
    assert "expected a JSON object, found list" in res["d03.e2"].error
    assert load_result(day / "d03.e5.cpu.json") is None
