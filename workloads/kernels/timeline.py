"""Timelines of d23.e5 and d37.e5 from CUPTI activity records, in place of Nsight Systems (not installed on the GPU
machine): a bench binary runs under the injected tracer (cuda/tools/trace_inject.cpp), the trace is cut on the
marker kernels the binary launches around each traced part, and each part is summarised and drawn as a timeline."""

from __future__ import annotations

import itertools
import json
import os
import re
import statistics
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

from ailab.contract import Column, Series, Skip
from workloads.kernels import build as _build
from workloads.kernels import jsonl, tools

MARKER = re.compile(r"timeline_markerILi(\d+)EE")  # mangled name of harness.cuh's timeline_marker<ID>
GPU_KINDS = ("kernel", "memcpy", "memset")


class TraceError(RuntimeError):
    """The trace is unusable: no records, dropped records, or markers missing."""


@dataclass(frozen=True)
class Event:
    kind: str  # kernel | memcpy | memset | api
    name: str  # kernel or API name; the copy direction for memcpy
    start: int  # ns, CUPTI clock
    end: int
    stream: int = -1
    corr: int = 0
    nbytes: int = 0

    @property
    def dur(self) -> int:
        return self.end - self.start


def parse(text: str) -> list[Event]:
    """The tracer's JSON lines -> events in start order; fails when the tracer reports dropped records."""
    events: list[Event] = []
    for n, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            d = json.loads(line)
        except json.JSONDecodeError as exc:
            raise TraceError(f"trace line {n}: not JSON: {line[:120]!r}") from exc
        kind = d.get("kind")
        if kind == "end":
            if d.get("dropped"):
                raise TraceError(f"the tracer dropped {d['dropped']} records: the timeline would have holes")
            continue
        if kind not in (*GPU_KINDS, "api"):
            continue
        events.append(
            Event(
                kind=kind,
                name=d.get("copy") if kind == "memcpy" else d.get("name", kind),
                start=int(d["start"]),
                end=int(d["end"]),
                stream=int(d.get("stream", -1)),
                corr=int(d.get("corr", 0)),
                nbytes=int(d.get("bytes", 0)),
            )
        )
    return sorted(events, key=lambda e: (e.start, e.end))


def parts(events: list[Event]) -> dict[int, list[Event]]:
    """Marker id (> 0) -> the GPU events after that marker and before the next one, plus the API calls that launched
    its kernels (matched by correlation id; a graph's kernels carry the cudaGraphLaunch's id)."""
    marks = [(e, int(m.group(1))) for e in events if e.kind == "kernel" and (m := MARKER.search(e.name))]
    if not marks:
        raise TraceError("no timeline_marker kernels in the trace (was the case run with its --case name?)")
    out: dict[int, list[Event]] = {}
    for i, (mark, ident) in enumerate(marks):
        if ident == 0:
            continue
        stop = marks[i + 1][0].start if i + 1 < len(marks) else None
        gpu = [
            e
            for e in events
            if e.kind in GPU_KINDS
            and e.start >= mark.end
            and (stop is None or e.end <= stop)
            and not MARKER.search(e.name)
        ]
        launched = {e.corr for e in gpu if e.kind == "kernel"}  # the launch calls, not copies or syncs
        out[ident] = gpu + [e for e in events if e.kind == "api" and e.corr in launched]
    return out


def union_ns(intervals: list[tuple[int, int]]) -> int:
    """Length of the union of [start, end) intervals."""
    total, cur_s, cur_e = 0, None, None
    for s, e in sorted(intervals):
        if cur_e is None or s > cur_e:
            if cur_e is not None:
                total += cur_e - cur_s
            cur_s, cur_e = s, e
        else:
            cur_e = max(cur_e, e)
    return total + (cur_e - cur_s if cur_e is not None else 0)


def intersect_ns(a: list[tuple[int, int]], b: list[tuple[int, int]]) -> int:
    """Time during which something of `a` and something of `b` run at once: |A| + |B| - |A u B|."""
    return union_ns(a) + union_ns(b) - union_ns(a + b)


def max_concurrent(intervals: list[tuple[int, int]]) -> int:
    """Largest number of intervals that overlap at one instant."""
    points = sorted([(s, 1) for s, _ in intervals] + [(e, -1) for _, e in intervals], key=lambda p: (p[0], p[1]))
    best = cur = 0
    for _, d in points:
        cur += d
        best = max(best, cur)
    return best


def gaps_ns(kernels: list[Event]) -> list[int]:
    """Idle time between consecutive kernels of one stream (start of the next minus end of the previous)."""
    out: list[int] = []
    by_stream: dict[int, list[Event]] = {}
    for k in kernels:
        by_stream.setdefault(k.stream, []).append(k)
    for ks in by_stream.values():
        ks.sort(key=lambda e: e.start)
        out += [max(0, b.start - a.end) for a, b in itertools.pairwise(ks)]
    return out


def lane(e: Event) -> str:
    return f"stream {e.stream}: {'kernel' if e.kind == 'kernel' else e.name if e.kind == 'memcpy' else e.kind}"


def timeline_series(name: str, events: list[Event]) -> Series:
    """One bar per GPU event on a lane per stream and engine, times in µs from the part's first event."""
    gpu = [e for e in events if e.kind in GPU_KINDS]
    t0 = min((e.start for e in gpu), default=0)
    s = Series(name=name, x=Column("time", "us"), y=Column("stream: engine"), kind="timeline")
    for e in sorted(gpu, key=lambda e: (e.stream, e.kind, e.start)):
        s.point(lane(e), (e.start - t0) / 1e3, (e.end - t0) / 1e3)
    return s


def trace(binary: str, case: str, quick: bool) -> tuple[jsonl.Parsed, list[Event]]:
    """Run `binary --case case` under the CUPTI tracer; its own JSON rows and the trace's events."""
    built = tools.built()
    lib = built / _build.TRACER
    if not lib.exists():
        raise Skip(f"the CUPTI tracer {lib} was not built")
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "trace.jsonl"
        env = {**os.environ, "CUDA_INJECTION64_PATH": str(lib), "AILAB_TRACE_OUT": str(out)}
        args = [str(_build.binary(binary, built)), "--case", case, *(["--quick"] if quick else [])]
        proc = subprocess.run(args, capture_output=True, text=True, env=env, timeout=600, check=False)
        if proc.returncode != 0:
            raise RuntimeError(f"{' '.join(args)} under the tracer exited {proc.returncode}: {proc.stderr[-2000:]}")
        if not out.exists() or not out.stat().st_size:
            raise TraceError(f"the tracer wrote no records (stderr: {proc.stderr[-1000:]})")
        return jsonl.parse(proc.stdout), parse(out.read_text())


def _ms(ns: float) -> float:
    return ns / 1e6


def streams_summary(ident: int, evs: list[Event]) -> list[object]:
    """One row of the d23.e5 table: engine busy times, copy/compute overlap, concurrency."""
    gpu = [e for e in evs if e.kind in GPU_KINDS]
    iv = {
        k: [(e.start, e.end) for e in gpu if (e.name if e.kind == "memcpy" else e.kind) == k]
        for k in ("HtoD", "kernel", "DtoH")
    }
    copies = iv["HtoD"] + iv["DtoH"]
    span = max(e.end for e in gpu) - min(e.start for e in gpu)
    both = intersect_ns(iv["kernel"], copies)
    return [
        ident,
        len({e.stream for e in gpu}),
        _ms(span),
        _ms(union_ns(iv["HtoD"])),
        _ms(union_ns(iv["kernel"])),
        _ms(union_ns(iv["DtoH"])),
        _ms(both),
        100 * both / span,
        max_concurrent(iv["kernel"]),
        max_concurrent(copies),
    ]


def graphs_summary(label: str, evs: list[Event]) -> list[object]:
    """One row of the d37.e5 table: kernel durations, gaps between kernels, and the host API time that issued them."""
    ks = [e for e in evs if e.kind == "kernel" and "graph_step" in e.name]
    gaps = gaps_ns(ks)
    api = [e for e in evs if e.kind == "api"]
    span = max(k.end for k in ks) - min(k.start for k in ks)
    busy = union_ns([(k.start, k.end) for k in ks])
    return [
        label,
        len(ks),
        span / 1e3,
        statistics.median(k.dur for k in ks) / 1e3,
        statistics.median(gaps) / 1e3 if gaps else 0.0,
        (sorted(gaps)[int(0.9 * (len(gaps) - 1))] / 1e3) if gaps else 0.0,
        100 * (span - busy) / span,
        len(api),
        sum(a.dur for a in api) / 1e3,
        ", ".join(sorted({a.name for a in api})),
    ]
