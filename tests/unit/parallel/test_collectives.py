"""d24 runners as the lab calls them (Context by keyword + typed params), with nccl_bench's output recorded: no
GPU here, so the worker runs are replaced by the JSON lines nccl_bench prints; what is checked is which runs each
experiment starts and how their rows become tables, series and notes."""

from __future__ import annotations

import json
from pathlib import Path
from typing import get_args

import pytest

from ailab.contract import Context, Skip
from ailab.contract.params import ParamsError, validate
from workloads.kernels import jsonl
from workloads.parallel import busbw
from workloads.parallel.experiments import collectives as c

COLS = [
    ["op", ""],
    ["GPUs", ""],
    ["size", "B"],
    ["time (NCCL via CuPy)", "us"],
    ["algbw", "GB/s"],
    ["busbw", "GB/s"],
    ["time (torch.distributed)", "us"],
    ["busbw (torch.distributed)", "GB/s"],
    ["correct", ""],
]


def _line(op: str, gpus: int, size: int, t: float) -> str:
    row = [op, gpus, size, t, size / t / 1e3, size / t / 1e3, t, size / t / 1e3, True]
    return json.dumps({"case": "collectives", "table": c.TABLE, "columns": COLS, "row": row})


def _ctx(eid: str, tmp_path: Path, device: str = "cuda") -> Context:
    return Context(experiment_id=eid, device=device, quick=True, workdir=tmp_path)


@pytest.fixture
def runs(monkeypatch: pytest.MonkeyPatch) -> list[tuple]:
    """Every nccl_bench run the runner starts, answered with 2 sizes of each op it asked for."""
    calls: list[tuple] = []

    def fake(quick: bool, path: str, ops: list[str], overlap: bool, ranks: int | None = None) -> jsonl.Parsed:
        calls.append((path, tuple(ops), overlap, ranks))
        n = ranks or 2
        lines = [_line(op, n, s, 10.0 * n + s / 1e5) for op in ops for s in (1024, 4096)]
        if overlap:
            lines.append(json.dumps({"case": "overlap", "table": "communication/compute overlap",
                                     "columns": [["what", ""], ["time", "ms"]], "row": ["both", 1.0]}))  # fmt: skip
        return jsonl.parse("\n".join(lines))

    monkeypatch.setattr(c, "_run", fake)
    return calls


@pytest.mark.parametrize(
    ("runner", "params"), [(c.collectives, c.CollectivesParams()), (c.allreduce_scaling, c.ScalingParams())]
)
def test_runners_skip_without_cuda(runner, params, tmp_path: Path) -> None:
    with pytest.raises(Skip, match="needs CUDA"):
        runner(_ctx("d24.e1", tmp_path, device="cpu"), params)


def test_collectives_label_transport_and_merge_paths(runs, tmp_path: Path) -> None:
    p = c.CollectivesParams(ops=["all_reduce"], paths=["default", "no-p2p"])
    out = c.collectives(_ctx("d24.e3", tmp_path), p)
    (t,) = out.tables
    assert t.columns[0].name == "transport"
    assert {r[1] for r in t.rows} == {"all_reduce"}
    assert [r[0] for r in t.rows] == [c.TRANSPORT["default"]] * 2 + [c.TRANSPORT["no-p2p"]] * 2
    assert runs == [("default", ("all_reduce",), False, None), ("no-p2p", ("all_reduce",), False, None)]
    assert out.substitute is not None and "PCIe" in out.substitute.instead_of  # host memory stands in for PCIe P2P
    assert [s.name for s in out.series] == [f"{y} vs size ({path})" for path in ("default", "no-p2p")
                                            for y in ("busbw", "time (NCCL via CuPy)")]  # fmt: skip


def test_each_experiment_starts_its_own_run_with_only_what_it_asks(runs, tmp_path: Path) -> None:
    e1 = c.collectives(_ctx("d24.e1", tmp_path), c.CollectivesParams(ops=["all_reduce"], plot=False))
    e4 = c.collectives(_ctx("d24.e4", tmp_path), c.CollectivesParams(ops=["all_reduce"], overlap=True, plot=False))
    e5 = c.collectives(_ctx("d24.e5", tmp_path), c.CollectivesParams())
    assert runs == [
        ("default", ("all_reduce",), False, None),
        ("default", ("all_reduce",), True, None),
        ("default", ("all_reduce", "all_gather", "reduce_scatter"), False, None),
    ]
    assert [t.name for t in e1.tables] == [c.TABLE] and not e1.series and e1.substitute is None
    assert [t.name for t in e4.tables] == [c.TABLE, "communication/compute overlap"]
    assert {r[1] for r in e5.tables[0].rows} == {"all_reduce", "all_gather", "reduce_scatter"}


def test_allreduce_scaling_runs_each_gpu_count_the_host_has(runs, monkeypatch, tmp_path: Path) -> None:
    monkeypatch.setattr(c, "gpu_count", lambda: 4)
    out = c.allreduce_scaling(_ctx("d24.e2", tmp_path), c.ScalingParams(gpus=[2, 4, 8]))
    assert runs == [("default", ("all_reduce",), False, 2), ("default", ("all_reduce",), False, 4)]
    summary = out.tables[0]
    assert [r[0] for r in summary.rows] == [2, 4]
    small, big = (20.0 + 1024 / 1e5, 40.0 + 1024 / 1e5), (20.0 + 4096 / 1e5, 40.0 + 4096 / 1e5)
    assert [r[1:5] for r in summary.rows] == [[1024, small[i], 4096, 4096 / big[i] / 1e3] for i in (0, 1)]
    assert {r[1] for r in out.tables[1].rows} == {2, 4}  # the per-size table, GPUs column
    assert set(out.series[0].lines) == {"2", "4"}
    assert "not measured: 8 GPUs (this host has 4)" in out.notes


def test_allreduce_scaling_skips_when_the_host_has_too_few_gpus(runs, monkeypatch, tmp_path: Path) -> None:
    monkeypatch.setattr(c, "gpu_count", lambda: 1)
    with pytest.raises(Skip, match="needs 2 or more GPUs; this host has 1"):
        c.allreduce_scaling(_ctx("d24.e2", tmp_path), c.ScalingParams())
    assert runs == []


@pytest.mark.parametrize(
    ("model", "params", "message"),
    [
        (c.CollectivesParams, {"ops": ["broadcast"]}, "field ops.0 = 'broadcast': Input should be 'all_reduce'"),
        (c.CollectivesParams, {"ops": []}, "field ops = []: List should have at least 1 item"),
        (c.CollectivesParams, {"paths": ["pcie"]}, "field paths.0 = 'pcie': Input should be 'default' or 'no-p2p'"),
        (c.ScalingParams, {"gpus": [1, 2]}, "field gpus.0 = 1: Input should be greater than or equal to 2"),
    ],
)
def test_bad_params_are_refused_naming_the_field(model, params, message) -> None:
    with pytest.raises(ParamsError) as e:
        validate(model, params)
    assert message in str(e.value)


def test_the_op_choices_are_the_ops_nccl_bench_runs() -> None:
    assert get_args(c.Op) == busbw.OPS
