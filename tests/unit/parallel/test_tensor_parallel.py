"""d80 and d57.e3 runners as the lab calls them (Context by keyword + typed params). No GPU here: tp.py's runs are
replaced by the JSON lines it prints, so what is checked is which runs each experiment starts (modes, GPU counts)
and how rows become tables; d80.e4 reads a stored d80.e3 result through the context, as on a GPU host."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from ailab.contract import Context, Skip
from ailab.contract.params import ParamsError, validate
from workloads.kernels import jsonl
from workloads.parallel.experiments import tensor_parallel as tp

COLS = [("mode", ""), ("GPUs", ""), ("batch", ""), ("seq", "tokens"), ("time", "ms"), ("communication", "ms"),
        ("computation", "ms")]  # fmt: skip


def _line(mode: str, gpus: int, comm: float) -> str:
    row = [mode, gpus, 1, 128, 10.0 / gpus + comm, comm, 10.0 / gpus]
    return json.dumps({"case": "d80", "table": tp.TABLE, "columns": [list(c) for c in COLS], "row": row})


@pytest.fixture
def worker_runs(monkeypatch: pytest.MonkeyPatch) -> list[list[str]]:
    """tp.py runs, answered with the reference row and one row per --modes key at --ranks GPUs."""
    calls: list[list[str]] = []

    def fake(module: str, args: list[str], env: dict | None = None) -> jsonl.Parsed:
        assert module == "workloads.parallel.tp"
        calls.append(args)
        n = int(args[args.index("--ranks") + 1])
        keys = args[args.index("--modes") + 1].split(",")
        names = {"tp": "tensor parallel", "sp": "tensor + sequence parallel"}
        lines = [_line(tp.REFERENCE, 1, 0.0)] + [_line(names[k], n, 0.5 * n) for k in keys]
        return jsonl.parse("\n".join(lines))

    monkeypatch.setattr(tp, "run_worker", fake)
    monkeypatch.setattr(tp, "gpu_count", lambda: 4)
    return calls


def _ctx(eid: str, tmp_path: Path, **kw: Any) -> Context:
    return Context(experiment_id=eid, device=kw.pop("device", "cuda"), quick=False, workdir=tmp_path, **kw)


def test_two_way_tensor_parallel_runs_only_tp_on_two_gpus(worker_runs, tmp_path: Path) -> None:
    p = validate(tp.ParallelParams, {"modes": ["1 device (reference)", "tensor parallel"], "gpus": [2]})
    out = tp.parallel(_ctx("d80.e1", tmp_path), p)
    assert worker_runs == [["--ranks", "2", "--modes", "tp"]]
    assert [(r[0], r[1]) for r in out.tables[0].rows] == [(tp.REFERENCE, 1), ("tensor parallel", 2)]


def test_every_gpu_count_is_its_own_run_and_the_reference_row_comes_once(worker_runs, tmp_path: Path) -> None:
    out = tp.parallel(_ctx("d80.e3", tmp_path), tp.ParallelParams(gpus=[2, "all", 4], breakdown=True))
    assert worker_runs == [["--ranks", "2", "--modes", "tp,sp"], ["--ranks", "4", "--modes", "tp,sp"]]
    rows = [(r[0], r[1]) for r in out.tables[0].rows]
    assert rows == [(tp.REFERENCE, 1), ("tensor parallel", 2), ("tensor + sequence parallel", 2),
                    ("tensor parallel", 4), ("tensor + sequence parallel", 4)]  # fmt: skip
    (bars,) = out.series
    assert bars.lines["communication"][1] == ["tensor parallel, 2 GPU", 1.0]


def test_gpu_counts_the_host_lacks_are_noted_or_skipped(worker_runs, monkeypatch, tmp_path: Path) -> None:
    out = tp.parallel(_ctx("d80.e2", tmp_path), tp.ParallelParams(gpus=[2, 8]))
    assert [a[1] for a in worker_runs] == ["2"] and "not measured: 8 GPUs (this host has 4)" in out.notes
    monkeypatch.setattr(tp, "gpu_count", lambda: 1)
    with pytest.raises(Skip, match=r"not measured: 2 GPUs \(this host has 1\)"):
        tp.parallel(_ctx("d80.e1", tmp_path), tp.ParallelParams(gpus=[2]))
    with pytest.raises(Skip, match="needs CUDA GPUs"):
        tp.parallel(_ctx("d80.e1", tmp_path, device="cpu"), tp.ParallelParams())


def _stored(rows: list[list[Any]]) -> dict[str, Any]:
    cols = [{"name": n, "unit": u} for n, u in COLS]
    return {"status": "ok", "tables": [{"name": tp.TABLE, "columns": cols, "rows": rows, "caption": ""}]}


def test_breakdown_re_presents_the_stored_parallel_runs_and_says_so(tmp_path: Path) -> None:
    rows = [[tp.REFERENCE, 1, 1, 128, 10.0, 0.0, 10.0], ["tensor parallel", 2, 1, 128, 6.0, 1.0, 5.0]]
    asked: list[str] = []
    ctx = _ctx("d80.e4", tmp_path, device="cpu", result_of=lambda eid: asked.append(eid) or _stored(rows))
    out = tp.comm_compute_breakdown(ctx, tp.BreakdownParams())
    assert asked == ["d80.e3"] and out.derived_from == ["d80.e3"]
    assert out.tables[0].rows == rows
    (bars,) = out.series
    assert bars.lines == {
        "communication": [[f"{tp.REFERENCE}, 1 GPU", 0.0], ["tensor parallel, 2 GPU", 1.0]],
        "computation": [[f"{tp.REFERENCE}, 1 GPU", 10.0], ["tensor parallel, 2 GPU", 5.0]],
    }


def test_breakdown_without_a_stored_source_is_a_skip(tmp_path: Path) -> None:
    with pytest.raises(Skip, match=r"derived from d80\.e3"):
        tp.comm_compute_breakdown(_ctx("d80.e4", tmp_path), tp.BreakdownParams())


def test_simulated_split_runs_as_bound(tmp_path: Path) -> None:
    out = tp.simulated(
        _ctx("d57.e3", tmp_path, device="cpu"), tp.SimulatedParams(tokens=8, hidden=16, partitions=[1, 2], reps=1)
    )
    (t,) = out.tables
    assert [r[0] for r in t.rows] == [1, 2] and all(r[-1] < 1e-6 for r in t.rows)


@pytest.mark.parametrize(
    ("model", "params", "message"),
    [
        (tp.ParallelParams, {"gpus": [3]}, "gpus [3]: allowed 2, 4, 8, 16 (a count must divide 16 heads) or 'all'"),
        (
            tp.ParallelParams,
            {"gpus": ["every", 2]},
            "gpus ['every']: allowed 2, 4, 8, 16 (a count must divide 16 heads)",
        ),
        (tp.ParallelParams, {"modes": ["1 device (reference)"]}, "allowed lists with 'tensor parallel' and/or"),
        (tp.ParallelParams, {"modes": ["pipeline parallel"]}, "field modes.0 = 'pipeline parallel': Input should"),
        (tp.BreakdownParams, {"source": "d24.e1"}, "field source = 'd24.e1': Input should be 'd80.e1'"),
        (tp.SimulatedParams, {"hidden": 32, "partitions": [3]}, "partitions [3]: allowed integers >= 1 dividing 4 x"),
        (tp.SimulatedParams, {"tokens": 0}, "field tokens = 0: Input should be greater than or equal to 1"),
    ],
)
def test_bad_params_are_refused_naming_the_field(model, params, message) -> None:
    with pytest.raises(ParamsError) as e:
        validate(model, params)
    assert message in str(e.value)
