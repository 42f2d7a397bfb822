"""Distributed training next to inference (d45): data-parallel training checked against one worker, the parameter
server's bottleneck as workers grow, all-reduce against it, the inference latency curve beside a training step,
and the comparison table built from those results. Each measuring experiment starts its own
workloads/training/dist.py run (CPU processes over gloo, one thread each)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, field_validator

from ailab.contract import Column, Context, NoParams, Output, Params, Series, Table
from workloads.kernels import jsonl
from workloads.parallel.launch import run_worker

WORKER = "workloads.training.dist"


class DataParallelParams(Params):
    workers: list[int] = Field(default=[1, 2], min_length=2, description="world sizes; 1 is the reference")

    @field_validator("workers")
    @classmethod
    def _has_reference(cls, v: list[int]) -> list[int]:
        if 1 not in v:
            raise ValueError(f"workers {v}: must include 1 (the single-worker run every other size is checked against)")
        if bad := [w for w in v if w not in (1, 2, 4)]:
            raise ValueError(f"workers {bad}: allowed 1, 2, 4 (each must divide the global batch of 64 or 128)")
        return sorted(set(v))


class SyncParams(Params):
    schemes: list[Literal["ps", "allreduce"]] = Field(default=["ps", "allreduce"], min_length=1)
    workers: list[int] = Field(default=[1, 2, 4, 8], min_length=1, description="workers (the server is extra)")
    gradient_mib: float = Field(default=4.0, gt=0, le=256, description="fp32 gradient synchronised per step, MiB")

    @field_validator("workers")
    @classmethod
    def _bounded(cls, v: list[int]) -> list[int]:
        if bad := [w for w in v if not 1 <= w <= 16]:
            raise ValueError(f"workers {bad}: allowed 1-16 processes")
        return sorted(set(v))


class CompareParams(Params):
    data_parallel: str = Field(default="d45.e1", description="the experiment whose data-parallel rows are used")
    sync: str = Field(default="d45.e3", description="the experiment whose synchronisation rows are used")
    inference: str = Field(default="d45.e4", description="the experiment whose inference rows are used")


def _run(args: list[str], quick: bool) -> jsonl.Parsed:
    return run_worker(WORKER, [*args, *(["--quick"] if quick else [])])


def _notes(parsed: jsonl.Parsed) -> list[str]:
    return [n for ns in parsed.notes.values() for n in ns]


def data_parallel(ctx: Context, p: DataParallelParams) -> Output:
    """d45.e1: the same MLP trained on 1 and 2 workers; the averaged-gradient run must follow the 1-worker
    trajectory (parameter difference at float rounding), the table shows where the step time goes."""
    parsed = _run(["dp", "--world", ",".join(map(str, p.workers))], ctx.quick)
    rows = parsed.rows(table="data-parallel training")
    if len(rows) != len(p.workers):
        raise RuntimeError(f"{WORKER} dp printed {len(rows)} rows for {len(p.workers)} world sizes")
    for r in rows:
        diff = r.get("max |param diff| vs 1 worker")
        if r.get("workers") > 1 and not diff < 1e-4:
            raise RuntimeError(f"{r.get('workers')} workers diverged from the 1-worker run: max |diff| {diff}")
    out = Output(notes=_notes(parsed))
    out.tables += jsonl.tables(
        rows,
        caption="synchronous data parallelism: each worker takes an equal share of "
        "every global batch; gradients averaged with one all-reduce per step",
    )
    return out


def sync_schemes(ctx: Context, p: SyncParams) -> Output:
    """d45.e2/e3: one gradient synchronisation per step, by a parameter server (every gradient through rank 0)
    and by gloo's ring all-reduce, as the worker count grows."""
    floats = int(p.gradient_mib * 2**20 / 4)
    args = ["sync", "--world", ",".join(map(str, p.workers)), "--floats", str(floats), "--schemes", ",".join(p.schemes)]
    parsed = _run(args, ctx.quick)
    rows = parsed.rows(table="gradient synchronisation")
    out = Output(notes=_notes(parsed))
    out.tables += jsonl.tables(
        rows,
        caption="the busiest process's traffic: the server's grows with the workers, "
        "each ring member's stays under twice the gradient",
    )
    step = Series("sync time per step vs workers", x=Column("workers", ""), y=Column("sync per step", "ms"))
    hot = Series(
        "traffic at the busiest process vs workers",
        x=Column("workers", ""),
        y=Column("traffic at the busiest process per step", "MiB"),
    )
    for r in rows:
        step.point(r.get("scheme"), r.get("workers"), r.get("sync per step"))
        hot.point(r.get("scheme"), r.get("workers"), r.get("traffic at the busiest process per step"))
    out.series += [step, hot]
    return out


def inference_curve(ctx: Context, p: NoParams) -> Output:
    """d45.e4: latency per request batch (p50/p99) and throughput of the digits MLP, beside a training step over
    the same batch."""
    parsed = _run(["infer"], ctx.quick)
    rows = parsed.rows(table="inference vs training step")
    out = Output(notes=_notes(parsed))
    out.tables += jsonl.tables(rows, caption="nearest-rank percentiles of single calls, one thread")
    lat = Series("latency vs batch", x=Column("batch", "samples"), y=Column("latency", "ms"), log_x=True, log_y=True)
    for r in rows:
        lat.point("inference p50", r.get("batch"), r.get("inference p50"))
        lat.point("inference p99", r.get("batch"), r.get("inference p99"))
        lat.point("training step p50", r.get("batch"), r.get("training step p50"))
    out.series.append(lat)
    return out


def _table(rec: dict[str, Any], name: str) -> list[dict[str, Any]]:
    for t in rec.get("tables", []):
        if t["name"] == name:
            cols = [c["name"] for c in t["columns"]]
            return [dict(zip(cols, row, strict=True)) for row in t["rows"]]
    raise RuntimeError(f"result {rec.get('id')} has no table {name!r}")


def comparison(ctx: Context, p: CompareParams) -> Output:
    """d45.e5: training and inference side by side, every number from the three measured results (derived)."""
    dp = _table(ctx.derived_rows(p.data_parallel), "data-parallel training")
    sync = _table(ctx.derived_rows(p.sync), "gradient synchronisation")
    inf = _table(ctx.derived_rows(p.inference), "inference vs training step")
    most = max(dp, key=lambda r: r["workers"])
    one = next(r for r in inf if r["batch"] == 1)
    big = max(inf, key=lambda r: r["batch"])
    ps = max((r for r in sync if r["scheme"] == "parameter server"), key=lambda r: r["workers"], default=None)
    ar = max((r for r in sync if r["scheme"] != "parameter server"), key=lambda r: r["workers"], default=None)
    t = Table.of("training vs inference", [("aspect", ""), ("distributed training", ""), ("inference", "")])
    t.add(
        "goal (what is measured)",
        f"throughput: {most['samples/s']} samples/s on {most['workers']} workers",
        f"latency: p99 {one['inference p99']} ms per single request",
    )
    t.add(
        "unit of work",
        f"a step over a global batch of {most['global batch']}: {most['step']} ms",
        f"a request; batch {big['batch']} raises throughput to {big['inference throughput']} samples/s",
    )
    t.add(
        "state",
        "parameters, gradients and optimiser state change every step",
        "read-only weights: replicas need no synchronisation",
    )
    if ps and ar:
        t.add(
            "communication",
            f"every step: {ar['gradient']} MiB gradient; parameter server {ps['sync per step']} ms at "
            f"{ps['workers']} workers vs all-reduce {ar['sync per step']} ms at {ar['workers']}",
            "none between replicas; only the request and the response",
        )
    t.add(
        "cost of one pass",
        f"a training step is {big['training step / inference']}x an inference call at batch {big['batch']}",
        "forward only, no autograd graph kept",
    )
    t.add(
        "scaling",
        "data parallelism (more workers, bigger global batch) or model/pipeline parallelism (d57)",
        "more replicas behind a balancer; batching (dynamic batcher) for throughput",
    )
    t.add("failure", "a lost worker stalls the synchronous step", "a lost replica loses its in-flight requests only")
    return Output(tables=[t], derived_from=[p.data_parallel, p.sync, p.inference])
