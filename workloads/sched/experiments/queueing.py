"""A bounded request queue in front of ONNX Runtime worker processes (d83.e1), and the load-test parameters the
d83 runners share.

Requests are single digits sent by an open-loop Poisson generator that shares the front-end's asyncio loop; the
front-end queues them (bounded: full -> rejected), batches them (Triton's rule, workloads/sched/batching.py) and
sends each batch to an ONNX Runtime worker process over a socket pair. All CPU, no tritonserver: the point is the
queue and batcher themselves, measured with the transport to the worker reported separately.
"""

from __future__ import annotations

from typing import Annotated

import numpy as np
from pydantic import Field, model_validator

from ailab.contract import Column, Context, Output, Params, Series, Table
from workloads.models.data import sample_inputs
from workloads.sched.batching import BatchConfig
from workloads.sched.pool import WorkerPool, calibrate, default_model, host_note


class BatchingConfig(Params):
    """One dynamic-batching configuration (Triton's names); checked as batching.BatchConfig checks it."""

    label: str = Field(min_length=1, description="how the tables and plots name this configuration")
    max_batch_size: int = Field(default=1, ge=1, description="1 = no batching")
    max_queue_delay_us: int = Field(default=0, ge=0, description="longest wait for batch-mates, µs")
    preferred: list[int] = Field(default=[], description="batch sizes sent as soon as they can be formed")

    @model_validator(mode="after")
    def _preferred_fit(self) -> BatchingConfig:
        if bad := [n for n in self.preferred if not 1 <= n <= self.max_batch_size]:
            raise ValueError(f"preferred {bad}: allowed integers 1..max_batch_size ({self.max_batch_size})")
        return self

    def config(self, capacity: int) -> BatchConfig:
        return BatchConfig(self.max_batch_size, self.max_queue_delay_us, tuple(self.preferred), capacity)


class LoadParams(Params):
    """Worker processes, queue and measured window, shared by every d83 runner."""

    workers: int = Field(default=1, ge=1, le=8, description="ONNX Runtime worker processes")
    queue_capacity: int = Field(default=2048, ge=1, le=1_000_000, description="requests held before rejecting")
    warmup_s: float = Field(default=0.5, ge=0, le=10)
    duration_s: float = Field(default=3.0, ge=0.2, le=60, description="measured window, s")
    drain_s: float = Field(default=5.0, ge=0.1, le=60, description="wait for queued requests after the window, s")
    seed: int = Field(default=0, ge=0, le=2**31)


class QueueParams(LoadParams):
    capacities: list[Annotated[int, Field(ge=1, le=1_000_000)]] = Field(
        default=[64, 512, 4096], min_length=1, description="queue capacities to try, requests"
    )
    burst: int = Field(default=2000, ge=1, le=100_000, description="requests submitted at once")


def design_note(p: LoadParams) -> str:
    return (
        f"{p.workers} ONNX Runtime worker process(es) (1 intra-op thread, the Day-3 MLP), one batch in flight each; "
        f"queue capacity {p.queue_capacity}; the generator shares the front-end's event loop, so 'generator-bound' "
        "means that one Python loop (generation + queueing + batching + replies) was saturated. Latency = enqueue -> "
        "answer; queue = enqueue -> batch formation began (a worker free); formation = waiting for batch-mates; "
        "service = dispatch -> answer (transport + inference). Transport per batch = service minus the worker's own "
        "busy time (pickling, socket, process wake-ups); transport share = its part of the mean latency."
    )


def request_queue(ctx: Context, p: QueueParams) -> Output:
    """d83.e1: a burst of concurrent requests into bounded queues: accepted, rejected, depth, drain, correctness."""
    from workloads.models import ortbench
    from workloads.sched import qpsload

    images, _ = sample_inputs(256)
    out = Output(notes=[host_note(), design_note(p)])
    t = Table.of(
        "burst",
        [
            ("queue capacity", "requests"),
            ("burst", "requests"),
            ("accepted", ""),
            ("rejected", ""),
            ("peak depth", "requests"),
            ("drain time", "ms"),
            ("p50", "ms"),
            ("p99", "ms"),
            ("answers == direct inference", ""),
        ],
        caption=f"{p.burst} requests submitted in one event-loop turn (concurrent clients), no batching; every "
        "accepted answer compared bit for bit with a direct batch-1 ONNX Runtime run of the same digit in this process",
    )
    depth = Series("queue_depth", x=Column("time since burst", "ms"), y=Column("queue depth", "requests"))
    sess = ortbench.session(default_model(), "all", intra_threads=1)
    direct = np.concatenate([sess.run(None, {"input": images[k][None]})[0] for k in range(len(images))])
    with WorkerPool(p.workers) as pool:
        cal = calibrate(pool, images[:1], tasks=200)
        tr = Table.of(
            "transport",
            [("batch", ""), ("round trip", "ms"), ("compute", "ms"), ("no-op round trip", "ms"), ("transport", "%")],
            caption="One worker alone, one request in flight, means of 200: what each hop of a request costs",
        )
        cal += calibrate(pool, images[:32], tasks=200)
        for c in cal:
            tr.add(c.batch, round(c.roundtrip_s * 1e3, 4), round(c.compute_s * 1e3, 4), round(c.noop_s * 1e3, 4),
                   round(100 * c.transport_s / c.roundtrip_s, 1))  # fmt: skip
        for cap in p.capacities:
            r = qpsload.burst(pool, BatchConfig(1, 0, (), cap), images, p.burst)
            same = bool(np.array_equal(r["logits"], direct[r["idx"]]))
            t.add(cap, p.burst, r["accepted"], r["rejected"], r["peak"], round(r["drain_ms"], 1),
                  round(r["p50"], 2), round(r["p99"], 2), same)  # fmt: skip
            for tm, d in r["depth"]:
                depth.point(f"capacity {cap}", tm, d)
    out.tables += [tr, t]
    out.series.append(depth)
    out.notes.append(
        "A full queue answers at once with QueueFull (counted as rejected) instead of buffering without limit: "
        "the caller learns immediately, and the accepted requests' wait is bounded by capacity / service rate."
    )
    return out
