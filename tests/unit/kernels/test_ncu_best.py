"""d11.e5's family profile: tensor-pipe metric choice, the stored winner, failures that stay one row, bad parameters.

The ncu output here is HAND-MADE (fixtures/ncu_query_metrics_hand.txt, fixtures/ncu_best_kernel_hand.csv: the layout
of `ncu --query-metrics` and `ncu --csv --page raw`, invented values; see fixtures/README.md), because no GPU was at
hand when this was written. ncu itself cannot run on this host, so the runner's calls to it are replaced by the
parsed fixture; the process-group kill on a timeout runs a real stand-in process.
"""

from __future__ import annotations

import json
import math
import os
import time
from pathlib import Path
from typing import Any

import pytest
import yaml

from ailab.contract import Context, Skip
from ailab.contract.params import ParamsError, validate
from workloads.kernels import tools
from workloads.kernels.experiments import ncu_profile as npf

FIX = Path(__file__).parent / "fixtures"
ROOT = Path(__file__).parents[3]
QUERY = (FIX / "ncu_query_metrics_hand.txt").read_text()
CSV = (FIX / "ncu_best_kernel_hand.csv").read_text()


def ctx(tmp_path: Path, result_of: Any = None, quick: bool = False) -> Context:
    kw = {"result_of": result_of} if result_of else {}
    return Context(experiment_id="d11.e5", device="cuda", quick=quick, workdir=tmp_path, host_class="h200", **kw)


def test_query_names_and_the_tensor_candidates_kept() -> None:
    known = tools.parse_query_metrics(QUERY)
    assert "sm__pipe_tensor_cycles_active" in known and "sm__throughput" in known
    assert "Metric" not in known and "Device" not in known
    kept = [m for m, _, _ in tools.tensor_metrics(known)]
    assert kept == [tools.TENSOR_ALL, tools.TENSOR_HMMA, tools.GMMA_ISSUE]  # no GMMA pipe in this excerpt
    assert len(tools.tensor_metrics(None)) == len(tools.TENSOR_METRICS)  # query failed: ask for all, fall back


def test_tensor_pipe_prefers_the_all_ops_pipe_else_the_larger_op_pipe() -> None:
    (row,) = tools.parse_ncu_csv(CSV)
    assert "hgemm_wgmma_nn" in row["Kernel Name"]
    everything = [m for m, _, _ in tools.TENSOR_METRICS]
    assert tools.tensor_pipe(row, everything) == 87.25
    assert tools.tensor_pipe_source(everything) == tools.TENSOR_ALL
    ops = {**row, tools.TENSOR_GMMA: "61.5"}
    assert tools.tensor_pipe(ops, [tools.TENSOR_GMMA, tools.TENSOR_HMMA]) == 61.5
    assert tools.tensor_pipe_source([tools.TENSOR_HMMA]) == f"max({tools.TENSOR_HMMA})"
    assert math.isnan(tools.tensor_pipe(row, []))
    assert tools.tensor_pipe_source([]).startswith("none")


def test_ncu_command_keeps_clocks_and_one_launch() -> None:
    cmd = tools.ncu_command("ncu", "bench_gemm", ("--case", "fp8_gemm"), "fp8_gemm_wgmma", 1, ("a.sum", "b.sum"))
    assert cmd[1:3] == ["--clock-control", "none"]
    assert cmd[cmd.index("--metrics") + 1] == "a.sum,b.sum"
    assert cmd[cmd.index("-c") + 1] == "1" and cmd[cmd.index("-k") + 1] == "regex:fp8_gemm_wgmma"
    assert cmd[-3:] == ["bench_gemm", "--case", "fp8_gemm"]


def _stored() -> dict[str, Any]:
    cols = [{"name": n, "unit": ""} for n in ("kernel", "N", "throughput")]
    rows = [
        ["cuBLAS HGEMM, B transposed (TN)", 4096, 700.0],
        ["wgmma persistent, 128x256 tile, setmaxnreg", 4096, 690.0],
        ["wgmma persistent NN (B row-major), 128x256 tile", 4096, float("nan")],  # a failed check has no time
        ["wgmma + TMA, 128x256 tile, 4 stages", 4096, 650.0],
        ["wgmma cluster 2x1, B multicast, TMA-store epilogue", 4096, 720.0],
        ["wgmma + TMA, 128x256 tile, 4 stages", 8192, 695.0],
    ]
    return {"status": "ok", "tables": [{"name": "GEMM kernels vs cuBLAS", "columns": cols, "rows": rows}]}


def _best(**kw: Any) -> npf.StoredBest:
    base = {"experiment": "d11.e1", "table": "GEMM kernels", "name": "kernel", "where": {"N": 4096}}
    return validate(npf.StoredBest, {**base, **kw})  # type: ignore[return-value]


def test_pick_best_is_the_fastest_finite_matching_row() -> None:
    assert npf.pick_best(_stored(), _best(contains=["wgmma"], excludes=["cluster"])) == (
        "wgmma persistent, 128x256 tile, setmaxnreg"
    )
    assert npf.pick_best(_stored(), _best(contains=["cluster"])).endswith("TMA-store epilogue")
    with pytest.raises(LookupError, match="has no column 'M'"):
        npf.pick_best(_stored(), _best(where={"M": 64}))
    with pytest.raises(LookupError, match="no row of 'GEMM kernels vs cuBLAS' matches"):
        npf.pick_best(_stored(), _best(contains=["FP8"]))
    with pytest.raises(LookupError, match="no stored table named 'conv'"):
        npf.pick_best(_stored(), _best(table="conv"))


def _target(**kw: Any) -> dict[str, Any]:
    return {
        "family": "wgmma f16 GEMM",
        "binary": "bench_gemm",
        "args": ["--case", "profile", "--n", "4096"],
        "kernel_regex": "hgemm_wgmma",
        "kernel": "wgmma persistent NN (B row-major), 128x256 tile",
        **kw,
    }


def _params(families: list[dict[str, Any]], **kw: Any) -> npf.BottleneckParams:
    return validate(npf.BottleneckParams, {"families": families, **kw})  # type: ignore[return-value]


@pytest.fixture
def fake_ncu(monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    """tools.ncu answers with the hand-made CSV (only the metrics asked for); each call is recorded."""
    calls: list[dict[str, Any]] = []
    (row,) = tools.parse_ncu_csv(CSV)
    monkeypatch.setattr(tools, "available_metrics", lambda: tools.parse_query_metrics(QUERY))

    def ncu(name, args, regex, count, metrics=None, env=None, timeout=600):
        calls.append({"name": name, "args": args, "regex": regex, "count": count, "metrics": metrics, "env": env})
        if env and env.get("AILAB_ONLY_KERNEL") == "broken":
            raise RuntimeError("ncu bench_gemm --case gemm_shapes ran past 120 s and was killed")
        keep = {k: v for k, v in row.items() if "__" not in k or k in (metrics or ())}
        return [keep]

    monkeypatch.setattr(tools, "ncu", ncu)
    return calls


def test_families_are_profiled_one_launch_each_with_the_stored_winner(tmp_path: Path, fake_ncu) -> None:
    best = {"experiment": "d11.e1", "table": "GEMM kernels", "name": "kernel", "where": {"N": 4096},
            "contains": ["wgmma"], "excludes": ["cluster"]}  # fmt: skip
    conv = _target(
        family="conv wgmma",
        binary="bench_conv",
        args=["--fp16", "--wgmma", "--case", "conv"],
        kernel_regex="conv3x3_igemm_wgmma",
        kernel="implicit GEMM wgmma, 128x128x64 tile, 2 warpgroups, 3 stages",
        layer="N=32 C=256 K=256 14x14",
    )
    p = _params([_target(best=best), _target(family="broken one", kernel="broken"), conv])
    out = npf.gemm_bottlenecks(ctx(tmp_path, result_of=lambda e: _stored()), p)
    (t,) = out.tables
    cols = [c.name for c in t.columns]
    rows = [dict(zip(cols, r, strict=True)) for r in t.rows]
    assert rows[0]["kernel"] == "wgmma persistent, 128x256 tile, setmaxnreg"  # the stored winner, not the default
    assert rows[0]["chosen from"] == "fastest in stored d11.e1 (h200)"
    assert rows[0]["tensor pipe"] == 87.25 and rows[0]["achieved occupancy"] == 18.75
    assert rows[0]["tensor pipe, HMMA ops"] == 0 and "tensor pipe, wgmma" not in cols  # not in the query excerpt
    assert tools.TENSOR_ALL in t.caption
    assert rows[1]["ncu kernel"] == "not profiled" and math.isnan(rows[1]["duration"])
    assert any(n.startswith("broken one: not profiled: ncu bench_gemm") for n in out.notes)
    assert rows[2]["chosen from"] == "binding" and rows[2]["configuration / layer"] == "N=32 C=256 K=256 14x14"
    assert [c["count"] for c in fake_ncu] == [1, 1, 1]
    assert fake_ncu[0]["env"] == {"AILAB_ONLY_KERNEL": "wgmma persistent, 128x256 tile, setmaxnreg"}
    assert fake_ncu[2]["env"]["AILAB_ONLY_LAYER"] == "N=32 C=256 K=256 14x14"
    assert tools.TENSOR_ALL in fake_ncu[0]["metrics"] and tools.TENSOR_GMMA not in fake_ncu[0]["metrics"]


def test_sgemm_winner_sets_the_autotuner_candidate_and_quick_drops_the_layer(tmp_path: Path, fake_ncu) -> None:
    cols = [{"name": n, "unit": ""} for n in ("configuration", "N", "throughput", "chosen")]
    rec = {"status": "ok", "tables": [{"name": "SGEMM warp tiling: autotuner candidates per size", "columns": cols,
           "rows": [["A", 4096, 40.0, ""], ["B", 4096, 39.0, "yes"]]}]}  # fmt: skip
    sg = _target(
        family="SGEMM",
        kernel="warp tiling (autotuned)",
        kernel_regex="sgemm_",
        sgemm_config="default",
        best_sets="sgemm_config",
        best={"experiment": "d11.e1", "table": "SGEMM warp", "name": "configuration",
              "where": {"N": 4096, "chosen": "yes"}},
    )  # fmt: skip
    conv = _target(family="conv", binary="bench_conv", args=["--fp16", "--case", "conv"], layer="L")
    out = npf.gemm_bottlenecks(ctx(tmp_path, result_of=lambda e: rec, quick=True), _params([sg, conv]))
    assert fake_ncu[0]["env"] == {"AILAB_ONLY_KERNEL": "warp tiling (autotuned)", "AILAB_SGEMM_ONLY": "B"}
    assert fake_ncu[0]["args"][0] == "--quick" and "AILAB_ONLY_LAYER" not in fake_ncu[1]["env"]
    assert out.tables[0].rows[0][2] == "B"


def test_ncu_refusing_the_tensor_metrics_is_profiled_without_them(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setattr(tools, "available_metrics", lambda: None)
    (row,) = tools.parse_ncu_csv(CSV)
    asked: list[tuple[str, ...]] = []

    def ncu(name, args, regex, count, metrics=None, env=None, timeout=600):
        asked.append(metrics)
        if tools.TENSOR_GMMA in metrics:
            raise RuntimeError(f"ncu exited 1: ==ERROR== Failed to find metric {tools.TENSOR_GMMA}")
        return [row]

    monkeypatch.setattr(tools, "ncu", ncu)
    out = npf.gemm_bottlenecks(ctx(tmp_path), _params([_target()]))
    assert len(asked) == 2 and not any(m in asked[1] for m, _, _ in tools.TENSOR_METRICS)
    t = out.tables[0]
    r = dict(zip([c.name for c in t.columns], t.rows[0], strict=True))
    assert r["duration"] == 201344 and math.isnan(r["tensor pipe"])
    assert any("ncu refused the tensor-pipe metrics" in n for n in out.notes)


def test_a_spent_budget_leaves_the_rest_not_run(tmp_path: Path, fake_ncu) -> None:
    out = npf.gemm_bottlenecks(ctx(tmp_path), _params([_target()], budget_s=1))
    assert out.tables[0].rows[0][4] == "not run" and not fake_ncu
    assert "the budget of 1 s for all families was spent" in out.notes[-2]


def test_a_timed_out_ncu_is_killed_with_its_program(tmp_path: Path, monkeypatch) -> None:
    """A stand-in 'ncu' that starts a child and waits: on the timeout both must be gone (not left on the GPU).

    The stand-in stays in the caller's process group, so an outer `timeout` (gpu_suite.sh) reaches it as well."""
    pidfile = tmp_path / "child.pid"
    fake = tmp_path / "ncu"
    fake.write_text(f"#!/bin/sh\nsleep 300 &\necho $! > {pidfile}\nwait\n")
    fake.chmod(0o755)
    monkeypatch.setattr(tools, "tool", lambda name: str(fake))
    monkeypatch.setattr(tools, "built", lambda: tmp_path)
    monkeypatch.setattr(tools._build, "binary", lambda name, root: tmp_path / name)
    with pytest.raises(RuntimeError, match="ran past 2 s and was killed"):
        tools.ncu("bench_gemm", ("--case", "profile"), "x", 1, timeout=2)
    child = int(pidfile.read_text())
    for _ in range(50):  # reaped by init shortly after the SIGKILL
        stat = Path(f"/proc/{child}/stat")
        if not stat.exists() or stat.read_text().split()[2] == "Z":
            break
        time.sleep(0.1)
    else:
        os.kill(child, 9)
        pytest.fail("the profiled program outlived the timeout")


def test_runner_skips_without_cuda(tmp_path: Path) -> None:
    c = Context(experiment_id="d11.e5", device="cpu", quick=True, workdir=tmp_path)
    with pytest.raises(Skip) as err:
        npf.gemm_bottlenecks(c, _params([_target()]))
    assert str(err.value) == tools.NO_CUDA


@pytest.mark.parametrize(
    ("family", "message"),
    [
        (_target(layer="L"), r"layer 'L': only bench_conv has layers"),
        (_target(binary="bench_conv", args=["--fp16"], sgemm_config="x"), r"sgemm_config 'x': only bench_gemm"),
        (_target(kernel_regex="("), r"kernel_regex '\(' is not a regular expression"),
        (_target(args=["--case", "nope"]), r"case 'nope' is not a case of bench_gemm"),
        (_target(best_sets="sgemm_config"), r"best_sets 'sgemm_config' needs sgemm_config"),
        (_target(binary="bench_memory"), r"binary"),
        (_target(kernel=""), r"kernel"),
        (_target(best={"experiment": "d11", "table": "t", "name": "kernel"}), r"experiment = 'd11'"),
    ],
)
def test_bad_family_parameters_name_the_field(family: dict[str, Any], message: str) -> None:
    with pytest.raises(ParamsError, match=message):
        _params([family])


def test_bad_run_parameters_name_the_field() -> None:
    with pytest.raises(ParamsError, match=r"the labels \['wgmma f16 GEMM'\] are used twice"):
        _params([_target(), _target()])
    with pytest.raises(ParamsError, match=r"field timeout_s = 0"):
        _params([_target()], timeout_s=0)
    with pytest.raises(ParamsError, match=r"families"):
        _params([])


def test_the_binding_validates_and_its_stored_winners_exist() -> None:
    """d11.e5's binding: one family per issue-22 kernel family; where the H200 results are stored, each `best`
    finds a row there (which row wins is the results' business, not this test's)."""
    params = yaml.safe_load((ROOT / "workloads/kernels/bindings.yaml").read_text())["d11.e5"]["params"]
    p = _params(params["families"], **{k: v for k, v in params.items() if k != "families"})
    assert p.progression is not None and p.progression.tensor_pipe
    assert len(p.families) >= 9
    for f in p.families:
        if f.best is None:
            continue
        stored = ROOT / "reports/results" / f.best.experiment[:3] / f"{f.best.experiment}.h200.json"
        if stored.exists():
            assert npf.pick_best(json.loads(stored.read_text()), f.best), f.family


def test_a_failed_progression_profile_is_a_note_and_the_families_still_run(tmp_path: Path, fake_ncu, monkeypatch):
    def broken(c, pp, timeout=600):
        raise RuntimeError("ncu bench_gemm --case profile ran past 120 s and was killed")

    monkeypatch.setattr(npf, "profile_case", broken)
    prog = {"binary": "bench_gemm", "case": "profile", "kernel_regex": "sgemm_", "tensor_pipe": True}
    out = npf.gemm_bottlenecks(ctx(tmp_path), _params([_target()], progression=prog))
    assert len(out.tables) == 1 and out.tables[0].rows[0][4].startswith("wgn::hgemm_wgmma_nn")
    assert any(n.startswith("Per-kernel profile (bench_gemm --case profile): ncu bench_gemm") for n in out.notes)


def test_the_progression_profile_gets_the_tensor_columns(tmp_path: Path, fake_ncu) -> None:
    prog = {"binary": "bench_gemm", "case": "profile", "kernel_regex": "hgemm_", "tensor_pipe": True}
    out = npf.gemm_bottlenecks(ctx(tmp_path), _params([_target()], progression=prog))
    prof = out.tables[0]
    cols = [c.name for c in prof.columns]
    assert cols[-4:] == ["tensor pipe", "tensor pipe, all ops", "tensor pipe, HMMA ops", "wgmma issue"]
    r = dict(zip(cols, prof.rows[0], strict=True))
    assert r["tensor pipe"] == 87.25 and r["duration"] == 201344 and math.isnan(r["sectors per load request"])
    assert tools.TENSOR_ALL in prof.caption
    assert fake_ncu[0]["count"] == 40 and fake_ncu[1]["count"] == 1
