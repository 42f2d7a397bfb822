"""CUPTI timelines (d23.e5, d37.e5): trace parsing, the split on marker kernels, interval arithmetic and summaries.

The traces were recorded on an H100 by the tracer (cuda/tools/trace_inject.cpp) injected into
`bench_streams --case overlap_trace --quick` and `bench_graphs --case graph_trace --quick` (then named d23.e5 and
d37.e5); no GPU is needed to read them.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ailab.report.plots import plot_series
from workloads.kernels import timeline as tl

FIX = Path(__file__).parent / "fixtures"


def events(case: str) -> list[tl.Event]:
    return tl.parse((FIX / f"trace_{case}.jsonl").read_text())


def test_interval_arithmetic() -> None:
    assert tl.union_ns([(0, 10), (5, 15), (20, 30)]) == 25
    assert tl.union_ns([]) == 0
    assert tl.intersect_ns([(0, 10)], [(5, 20)]) == 5
    assert tl.intersect_ns([(0, 10)], [(10, 20)]) == 0
    assert tl.max_concurrent([(0, 10), (5, 15), (6, 7), (20, 30)]) == 3
    assert tl.max_concurrent([(0, 10), (10, 20)]) == 1  # touching intervals do not overlap
    ks = [tl.Event("kernel", "k", s, e, stream=st) for s, e, st in [(0, 5, 1), (8, 9, 1), (0, 1, 2), (4, 6, 2)]]
    assert sorted(tl.gaps_ns(ks)) == [3, 3]


def test_streams_trace_splits_into_one_part_per_stream_count() -> None:
    parts = tl.parts(events("overlap_trace"))
    assert sorted(parts) == [1, 4]
    one, four = (tl.streams_summary(k, parts[k]) for k in (1, 4))
    # one stream: one H2D, one kernel, one D2H, strictly in order -> nothing overlaps
    assert one[1] == 1 and one[6] == 0 and one[8] == 1
    # four streams, 16 chunks: copies in both directions run at once and overlap kernels
    assert four[1] == 4 and four[6] > 0 and four[9] == 2
    assert sum(1 for e in parts[4] if e.kind == "memcpy") == 32
    # the span is never shorter than any one engine's busy time
    for row in (one, four):
        assert row[2] >= max(row[3], row[4], row[5])


def test_graph_trace_shows_the_launch_gaps_a_graph_removes() -> None:
    parts = tl.parts(events("graph_trace"))
    plain, graph = tl.graphs_summary("plain", parts[1]), tl.graphs_summary("graph", parts[2])
    assert plain[1] == graph[1] == 128
    # one launch call per kernel plainly, one cudaGraphLaunch for all 128 (the memcpy/sync calls are not counted)
    assert plain[7] == 128 and plain[9] == "cudaLaunchKernel_v7000"
    assert graph[7] == 1 and graph[9] == "cudaGraphLaunch_v10000"
    assert graph[4] < plain[4] and graph[2] < plain[2]


def test_dropped_records_and_missing_markers_are_errors() -> None:
    with pytest.raises(tl.TraceError, match="dropped 5 records"):
        tl.parse('{"kind":"end","dropped":5}\n')
    with pytest.raises(tl.TraceError, match="trace line 1: not JSON"):
        tl.parse("{oops\n")
    k = json.dumps({"kind": "kernel", "name": "_Z4stepv", "stream": 7, "start": 1, "end": 2, "corr": 1})
    with pytest.raises(tl.TraceError, match="no timeline_marker kernels"):
        tl.parts(tl.parse(k + "\n"))


def test_timeline_series_renders_as_a_gantt_chart(tmp_path: Path) -> None:
    parts = tl.parts(events("overlap_trace"))
    s = tl.timeline_series("timeline, 4 stream(s)", parts[4])
    assert s.kind == "timeline"
    assert any(lane.endswith("HtoD") for lane in s.lines) and any(lane.endswith("kernel") for lane in s.lines)
    first = min(p[0] for pts in s.lines.values() for p in pts)
    assert first == 0.0  # times start at the part's first event
    png = plot_series(
        {"name": s.name, "x": {"name": "time", "unit": "us"}, "y": {"name": "lane"}, "lines": s.lines, "kind": s.kind},
        "t",
        tmp_path / "t.png",
    )
    assert png.read_bytes()[:4] == b"\x89PNG"
