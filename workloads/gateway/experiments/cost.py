"""Cost (d14.e4): dollars per 1k QPS across Triton instance configurations, from throughput and CPU measured here and
a price table given as parameters (each price with its source and date).

Per configuration (instance count, dynamic batching on/off) on the local tritonserver:
- capacity: closed loop at `concurrency` -> the most requests/s one machine like this one serves;
- at the fixed rate `qps` (open loop): the server's CPU (cores, its process tree) and p99, so that cores per 1k QPS
  is measured at a load the host can carry.
Two cost figures follow, each per price row: whole machines (ceil(target / capacity) machines of `vcpus` vCPUs at
the row's hourly price) and vCPU-hours (the cores measured at the fixed rate, scaled to the target, at the row's
price per vCPU). This host is a shared 2-core x86 VM: its throughput stands for a 2-vCPU instance, not a benchmark
of any cloud instance; the result says so next to the numbers.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

from ailab.contract import Context, Output, Params, Table
from workloads.gateway.experiments import Int, Num


class Price(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    name: str = Field(min_length=1, description="instance type and region")
    usd_per_hour: Annotated[Num, Field(gt=0, le=1000)]
    vcpus: Annotated[Int, Field(ge=1, le=1024)]
    source: str = Field(min_length=1, description="where the price is published")
    date: str = Field(pattern=r"^\d{4}-\d{2}-\d{2}$", description="the date the source gives the price for")


class Config(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    name: str = Field(min_length=1)
    instances: Annotated[Int, Field(ge=1, le=8)] = 1
    batching: bool = True


DEFAULT_PRICES = [
    Price(
        name="c5.2xlarge, US East (N. Virginia), Linux on-demand",
        usd_per_hour=0.34,
        vcpus=8,
        source="AWS EC2 Auto Scaling User Guide, 'Spot price per unit hour example' "
        "(docs.aws.amazon.com/autoscaling/ec2/userguide/weights-spot-price-per-unit-hour-example.html); AWS labels "
        "the table example pricing, not current pricing",
        date="2026-12-02",
    ),
    Price(
        name="m7g.large (Graviton, arm64), us-east-1, Linux on-demand",
        usd_per_hour=0.0816,
        vcpus=2,
        source="factualminds.com blog 'Amazon EC2 On-Demand Pricing: Instance Families, Regional Multipliers, and "
        "the Graviton Crossover (2026)', quoting us-east-1 list prices of June 2026 (a third party, not AWS's page)",
        date="2026-06-17",
    ),
]


class CostParams(Params):
    configs: Annotated[list[Config], Field(min_length=1)] = Field(
        default=[
            Config(name="1 instance, no batching", instances=1, batching=False),
            Config(name="1 instance, dynamic batching", instances=1, batching=True),
            Config(name="2 instances, dynamic batching", instances=2, batching=True),
        ]
    )
    prices: Annotated[list[Price], Field(min_length=1)] = Field(
        default=DEFAULT_PRICES,
        description="hourly on-demand prices with source and date (the date the source states; 2026-12-02 = the "
        "day it was read, where the source states none)",
    )
    target_qps: Annotated[Num, Field(gt=0, le=10_000_000)] = Field(default=1000.0, description="QPS to provision")
    qps: Annotated[Num, Field(gt=0, le=5000)] = Field(default=200.0, description="fixed rate measured here, req/s")
    concurrency: Annotated[Int, Field(ge=1, le=256)] = Field(default=16, description="capacity run, in flight")
    duration_s: Annotated[Num, Field(gt=0, le=120)] = Field(default=5.0, description="each measured window, s")
    host_vcpus: Annotated[Int, Field(ge=1, le=1024)] = Field(
        default=2, description="vCPUs this host stands for (the machine-count figure prices machines of this size)"
    )


def cost(ctx: Context, p: CostParams) -> Output:
    """Capacity and CPU at a fixed rate per instance configuration; $/h per 1k QPS for each price row."""
    import math

    from workloads.serving import harness
    from workloads.serving.common import host_note, lat, load, variant

    at_start = host_note()
    m = Table.of(
        "measured",
        [
            ("configuration", ""),
            ("capacity", "req/s"),
            ("capacity p99", "ms"),
            (f"p99 at {p.qps:g} req/s", "ms"),
            (f"served at {p.qps:g} req/s", "req/s"),
            ("server CPU at the fixed rate", "cores"),
            ("cores per 1k QPS", "cores"),
            ("generator CPU per request", "µs"),
        ],
        caption=f"MLP on tritonserver (gRPC); capacity: closed loop, {p.concurrency} in flight, {p.duration_s:g} s; "
        f"fixed rate: open loop {p.qps:g} req/s, {p.duration_s:g} s, server CPU of its process tree",
    )
    c = Table.of(
        "cost",
        [
            ("configuration", ""),
            ("price row", ""),
            ("machines for the target", ""),
            ("$/h for the target (machines)", "USD/h"),
            ("$/h per 1k QPS (machines)", "USD/h"),
            ("$/h per 1k QPS (vCPU-hours at the fixed rate)", "USD/h"),
        ],
        caption=f"Target {p.target_qps:g} QPS. Machines: ceil(target / capacity) machines of {p.host_vcpus} vCPUs "
        "(the row's price scaled to that size); vCPU-hours: measured cores per 1k QPS x the row's price per vCPU",
    )
    measured = {}
    for cfg in p.configs:
        spec = variant("mlp", preferred=(8, 16), delay_us=1000, count=cfg.instances, batching=cfg.batching)
        with harness.serve(ctx, [spec], workdir=ctx.workdir / f"cfg{len(measured)}") as srv:
            cap, _ = load(srv, "mlp", concurrency=p.concurrency, warmup_s=1.0, duration_s=p.duration_s)
            fixed, cores = load(srv, "mlp", mode="open", qps=p.qps, warmup_s=1.0, duration_s=p.duration_s)
        per_1k = cores / fixed.throughput_rps * 1000 if fixed.throughput_rps else math.nan
        measured[cfg.name] = (cap.throughput_rps, per_1k)
        m.add(
            cfg.name,
            round(cap.throughput_rps, 1),
            lat(cap, "p99"),
            lat(fixed, "p99"),
            round(fixed.throughput_rps, 1),
            round(cores, 3),
            round(per_1k, 3),
            round(cap.generator_cpu_us_per_request, 1),
        )
        ctx.log(f"{cfg.name}: capacity {cap.throughput_rps:.0f} req/s, {per_1k:.3f} cores per 1k QPS")
    for name, (capacity, per_1k) in measured.items():
        for pr in p.prices:
            machine = pr.usd_per_hour / pr.vcpus * p.host_vcpus
            n = math.ceil(p.target_qps / capacity) if capacity > 0 else math.nan
            c.add(
                name,
                pr.name,
                n,
                round(n * machine, 4),
                round(n * machine / (p.target_qps / 1000), 4),
                round(per_1k * pr.usd_per_hour / pr.vcpus, 5),
            )
    src = Table.of("prices", [("price row", ""), ("USD/h", "USD/h"), ("vCPUs", ""), ("source", ""), ("date", "")])
    for pr in p.prices:
        src.add(pr.name, pr.usd_per_hour, pr.vcpus, pr.source, pr.date)
    notes = [
        at_start,
        "Capacity and CPU are measured on this shared 2-core x86 host with the generator on the same cores: they "
        "stand for one small instance's worth of CPU, not for a benchmark of the priced instance types (other CPUs, "
        "m7g is arm64). The machine figure rounds up to whole machines; the vCPU-hour figure is the floor a "
        "perfectly packed fleet would approach.",
    ]
    return Output(tables=[m, c, src], notes=notes)
