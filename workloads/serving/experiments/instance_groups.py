"""instance_group count -> throughput, latency and memory (d05.e1, d18.e2, d32.e3) on the local tritonserver."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field

from ailab.contract import Column, Context, Output, Params, Series, Table
from workloads.serving.experiments import AutoComplete, Concurrency, Int, Seconds, Warmup, server_args


class InstanceGroupsParams(Params):
    counts: Annotated[list[Annotated[Int, Field(ge=1, le=16)]], Field(min_length=1)] = Field(
        default=[1, 2, 4], description="instance_group counts to compare (CPU instances, one stub process each)"
    )
    concurrency: Concurrency = 16
    duration_s: Seconds = 5.0
    dynamic_batching: bool = Field(default=False, description="serve the MLP with dynamic batching on")
    warmup_s: Warmup = 1.0
    auto_complete_config: AutoComplete = True


def instance_groups(ctx: Context, p: InstanceGroupsParams) -> Output:
    """instance_group count 1/2/4 -> throughput, p50/p99 and memory (RSS of server + python stubs, MiB)."""
    from workloads.serving import harness
    from workloads.serving.common import errors, host_note, lat, load, variant

    at_start = host_note()
    t = Table.of(
        "instance_groups",
        [
            ("instances", ""),
            ("throughput", "req/s"),
            ("p50", "ms"),
            ("p99", "ms"),
            ("server CPU", "cores"),
            ("server RSS", "MiB"),
            ("stubs RSS", "MiB"),
            ("errors", ""),
        ],
        caption="MLP, python backend + onnxruntime (1 thread per instance), gRPC closed loop, "
        f"concurrency {p.concurrency}",
    )
    s = Series("throughput_vs_instances", x=Column("instances", ""), y=Column("throughput", "req/s"))
    for n in p.counts:
        spec = variant("mlp", count=n, batching=p.dynamic_batching)
        args = server_args(p.auto_complete_config)
        with harness.serve(ctx, [spec], workdir=ctx.workdir / f"ig{n}", args=args) as srv:
            res, cpu = load(srv, "mlp", concurrency=p.concurrency, warmup_s=p.warmup_s, duration_s=p.duration_s)
            server_rss, stubs_rss = harness.rss_mib(srv.pid)
        t.add(
            n,
            round(res.throughput_rps, 1),
            lat(res, "p50"),
            lat(res, "p99"),
            round(cpu, 2),
            round(server_rss, 1),
            round(stubs_rss, 1),
            errors(res),
        )
        s.point("lab loadgen", n, res.throughput_rps)
        ctx.log(f"instances {n}: {res.throughput_rps:.0f} req/s")
    out = Output(tables=[t], series=[s])
    out.notes += [
        at_start,
        "Each instance is a separate triton_python_backend_stub process with its own onnxruntime session; "
        "on a 2-core CPU host more instances add memory but little throughput once both cores are busy. "
        "GPU memory per instance (the curriculum's wording) needs KIND_GPU on a GPU host.",
    ]
    return out
