"""The harness's JSON lines -> tables, series and target verdicts, on output recorded from an H100 run."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from workloads.kernels import jsonl, targets

FIX = Path(__file__).parent / "fixtures"


def parsed(name: str) -> jsonl.Parsed:
    return jsonl.parse((FIX / name).read_text())


def test_vector_add_rows_become_one_table_with_units() -> None:
    p = parsed("bench_memory_vector_add_variants.jsonl")
    tables = jsonl.tables(p.rows(case="vector_add_variants"))
    assert [t.name for t in tables] == ["vector_add: one-shot grid vs grid-stride"]
    t = tables[0]
    assert [(c.name, c.unit) for c in t.columns][:4] == [
        ("kernel", ""),
        ("N", "elements"),
        ("time", "ms"),
        ("bandwidth", "GB/s"),
    ]
    assert len(t.rows) == 12  # 4 sizes x 3 kernels in the --quick sweep
    err = [c.name for c in t.columns].index("rel. error")
    assert all(r[err] == 0 for r in t.rows)  # vector_add is exact: relative error 0


def test_series_has_one_line_per_kernel() -> None:
    p = parsed("bench_memory_vector_add_variants.jsonl")
    s = jsonl.series(p.rows(case="vector_add_variants"), "bw", "N", "bandwidth", "kernel", log_x=True)
    assert set(s.lines) == {"one-shot grid", "grid-stride (8 blocks/SM)", "grid-stride float4"}
    assert all(len(pts) == 4 for pts in s.lines.values())
    assert s.y.unit == "GB/s"


def test_null_values_become_nan() -> None:
    p = jsonl.parse('{"case":"c","table":"t","columns":[["x","ms"]],"row":[null]}\n')
    assert math.isnan(p.records[0].row[0])


def test_notes_and_other_objects_are_kept_apart() -> None:
    p = jsonl.parse('{"case":"d09.e4","note":"not run"}\n{"case":"oob","kernel":"guarded"}\n')
    assert p.notes == {"d09.e4": ["not run"]}
    assert p.other == [{"case": "oob", "kernel": "guarded"}]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("not json", "line 1: not JSON"),
        ("[1, 2]", "line 1: expected a JSON object"),
        ('{"case":"c","row":[1]}', "line 1: row record lacks table, columns"),
        ('{"case":"c","table":"t","columns":[["a",""]],"row":[1,2]}', "line 1: 2 values for 1 columns"),
        ('{"case":"c","table":"t","columns":["a"],"row":[1]}', "columns must be [name, unit] pairs"),
    ],
)
def test_malformed_lines_name_the_line_and_the_problem(text: str, message: str) -> None:
    with pytest.raises(jsonl.ParseError, match=message.replace("[", r"\[").replace("]", r"\]")):
        jsonl.parse(text)


def test_series_with_unknown_column_is_an_error() -> None:
    p = parsed("bench_graphs.jsonl")
    with pytest.raises(jsonl.ParseError, match="column 'nope' not in"):
        jsonl.series(p.rows(case="graph_batches"), "s", "batch", "nope", "batch")


def test_targets_on_recorded_output() -> None:
    mem, gemm, graphs = (
        parsed("bench_memory_vector_add_variants.jsonl"),
        parsed("bench_gemm_sweep.jsonl"),
        parsed("bench_graphs.jsonl"),
    )
    assert targets.check("vector_add", mem).startswith("Target vector_add >= 90% of D2D copy bandwidth at N=4194304")
    # the quick sweep stops at N=512: the verdict names the largest size it has
    assert "at N=512" in targets.check("sgemm", gemm)
    assert "at N=512" in targets.check("hgemm", gemm)
    worst = min(r.get("speedup") for r in graphs.rows(case="graph_batches"))
    verdict = targets.check("graphs", graphs)
    assert f"small kernels >= 2x faster than plain launches: {'MET' if worst >= 2 else 'NOT MET'} (" in verdict
    assert f"(lowest speedup {worst:.2f}x" in verdict


def test_graphs_target_says_not_met_below_2x() -> None:
    """The verdict follows the measured ratio: the same recorded rows with one speedup lowered to 1.5x fail."""
    graphs = parsed("bench_graphs.jsonl")
    row = graphs.rows(case="graph_batches")[0]
    row.row[[c for c, _ in row.columns].index("speedup")] = 1.5
    verdict = targets.check("graphs", graphs)
    assert ": NOT MET (lowest speedup 1.50x" in verdict


def test_sgemm_goal_is_judged_per_size_from_the_same_rows() -> None:
    """Issue 22's 90 % goal: MET or NOT MET follows each size's measured ratio, never a fixed answer."""
    p = parsed("bench_gemm_sweep_n256_n4096.jsonl")
    rows = [r for r in p.rows(case="sweep") if r.get("N") == 4096 and r.get("unit") == "CUDA core"]
    base = next(r.get("throughput") for r in rows if r.get("kernel") == "cuBLAS SGEMM")
    best = max((r for r in rows if not r.get("kernel").startswith("cuBLAS")), key=lambda r: r.get("throughput"))
    pct = 100 * best.get("throughput") / base
    verdict = targets.check("sgemm", p)
    assert f"N=4096: {'MET' if pct >= 90 else 'NOT MET'} ({best.get('kernel')}: {pct:.1f}%)" in verdict


def test_unknown_target_is_rejected_with_the_allowed_names() -> None:
    allowed = "vector_add, sgemm, hgemm, gemm_shapes, graphs, graph_latency"
    with pytest.raises(ValueError, match=f"target 'speed': allowed values are {allowed}"):
        targets.check("speed", jsonl.Parsed())


def test_hgemm_target_uses_the_same_layout_cublas_row() -> None:
    """Recorded on an H100 (`bench_gemm --case sweep --n 256 --n 4096`): the wgmma kernels read B transposed, so
    their ratio is against cuBLAS on that layout (their own "of cuBLAS"), not against the row-major cuBLAS call."""
    p = parsed("bench_gemm_sweep_n256_n4096.jsonl")
    rows = {r.get("kernel"): r for r in p.rows(case="sweep") if r.get("N") == 4096}
    best = rows["wgmma + TMA, 128x256 tile, 4 stages"]
    tn = rows["cuBLAS HGEMM, B transposed (TN)"]
    assert best.get("of cuBLAS") == pytest.approx(100 * best.get("throughput") / tn.get("throughput"), rel=1e-4)
    verdict = targets.check("hgemm", p)
    assert f"wgmma + TMA, 128x256 tile, 4 stages: {best.get('of cuBLAS'):.1f}% of cuBLAS" in verdict
    assert ("stretch (wgmma >= 80%): MET" in verdict) == (best.get("of cuBLAS") >= 80)


def test_hgemm_target_ignores_kernels_with_wrong_results() -> None:
    """A fast kernel whose relative error is 1e-2 or worse never counts towards the target."""
    p = parsed("bench_gemm_sweep_n256_n4096.jsonl")
    for r in p.rows(case="sweep"):
        if r.get("N") == 4096 and "wgmma" in r.get("kernel"):
            r.row[[c for c, _ in r.columns].index("rel. error")] = 0.5
    verdict = targets.check("hgemm", p)
    assert "wgmma" not in verdict.split("(")[1]
    assert "NOT MET (no correct wgmma kernel in this run)" in verdict
