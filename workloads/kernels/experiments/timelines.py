"""Timelines of the stream (d23.e5) and graph (d37.e5) programs from CUPTI activity records, in place of Nsight
Systems (not on the GPU machine): the traced program runs under cuda/tools/trace_inject.cpp, the trace is cut on its
marker kernels (workloads/kernels/timeline.py) and summarised per traced pass, with a Gantt chart of each.
"""

from __future__ import annotations

from ailab.contract import Context, Output, Table
from workloads.kernels import jsonl, tools
from workloads.kernels import timeline as tl


def _traced(ctx: Context, binary: str, case: str) -> tuple[jsonl.Parsed, list[tl.Event]]:
    """The traced run of `binary --case case`: skipped without a GPU."""
    tools.require_cuda(ctx)
    return tl.trace(binary, case, ctx.quick)


def streams_timeline(ctx: Context) -> Output:
    """d23.e5: the d23.e1 program with 1 and 4 streams, traced: when each engine is busy and what overlaps."""
    rows, events = _traced(ctx, "bench_streams", "overlap_trace")
    t = Table.of(
        "multi-stream timeline (CUPTI activity trace): H2D copy + kernel + D2H per chunk",
        [
            ("streams", ""),
            ("streams seen in trace", ""),
            ("span", "ms"),
            ("H2D busy", "ms"),
            ("kernels busy", "ms"),
            ("D2H busy", "ms"),
            ("kernel and copy at once", "ms"),
            ("overlap of span", "%"),
            ("max kernels at once", ""),
            ("max copies at once", ""),
        ],
        caption="busy = union of the engine's intervals; times from CUPTI's GPU timestamps of one traced pass",
    )
    out = Output(tables=[t, *jsonl.tables(rows.rows(case="overlap_trace"))])
    for ident, evs in sorted(tl.parts(events).items()):
        t.add(*tl.streams_summary(ident, evs))
        out.series.append(tl.timeline_series(f"timeline, {ident} stream(s)", evs))
    out.notes.append(
        "One copy engine per direction: H2D and D2H of different chunks can overlap each other and the kernels, "
        "two copies in the same direction cannot; with one stream every stage waits for the previous one."
    )
    return out


def graphs_timeline(ctx: Context) -> Output:
    """d37.e5: the 128-kernel chain launched plainly and replayed as a graph, traced: kernel time vs idle gaps."""
    rows, events = _traced(ctx, "bench_graphs", "graph_trace")
    t = Table.of(
        "CUDA graph vs plain launches: kernel timeline (CUPTI activity trace, batch 1)",
        [
            ("variant", ""),
            ("kernels", ""),
            ("span", "us"),
            ("median kernel", "us"),
            ("median gap", "us"),
            ("p90 gap", "us"),
            ("GPU idle in span", "%"),
            ("API calls", ""),
            ("API time", "us"),
            ("API", ""),
        ],
        caption="gap = next kernel's start minus this kernel's end on the stream; API = the runtime calls that "
        "launched these kernels (matched by CUPTI correlation id). Tracing every API call slows plain launches, so "
        "their gaps here are larger than in d37.e3's untraced timings; the kernels themselves are timed by the GPU",
    )
    out = Output(tables=[t, *jsonl.tables(rows.rows(case="graph_trace"))])
    names = {1: "plain launches", 2: "graph replay"}
    for ident, evs in sorted(tl.parts(events).items()):
        t.add(*tl.graphs_summary(names.get(ident, str(ident)), evs))
        out.series.append(tl.timeline_series(f"timeline, {names.get(ident, ident)}", evs))
    return out
