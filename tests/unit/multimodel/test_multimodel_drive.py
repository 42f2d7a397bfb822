"""drive.together: every stream runs at the same time, through the sender it is given, results in the streams' order.
No server: the sender is a stand-in that records what it was handed (the live tests send real requests)."""

from __future__ import annotations

import threading

import pytest

from workloads.multimodel import drive
from workloads.serving import loadgen


def test_together_runs_every_stream_at_once_through_the_given_sender_in_order() -> None:
    streams = [loadgen.LoadSpec(url="127.0.0.1:1", model=m) for m in ("prio", "plain")]
    both_running = threading.Barrier(len(streams), timeout=10)  # passed only when the sends overlap
    seen: list[loadgen.LoadSpec] = []

    def send(spec: loadgen.LoadSpec) -> loadgen.LoadResult:
        seen.append(spec)
        both_running.wait()
        return loadgen.LoadResult(spec={"model": spec.model}, window_s=1.0, sent=len(spec.model))

    out = drive.together(streams, run=send)

    assert [r.spec["model"] for r in out] == ["prio", "plain"]
    assert len({s.start_at for s in seen}) == 1, "every stream gets the same start time"
    assert all(s.start_at is not None for s in seen)


def test_together_reraises_a_streams_failure_in_the_caller() -> None:
    def send(spec: loadgen.LoadSpec) -> loadgen.LoadResult:
        raise RuntimeError(f"{spec.model}: refused")

    with pytest.raises(RuntimeError, match="plain: refused"):
        drive.together([loadgen.LoadSpec(url="127.0.0.1:1", model="plain")], run=send)
