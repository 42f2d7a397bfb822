"""Warm-up requests vs first-request latency after a fresh model load (d07.e2)."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field

from ailab.contract import Context, Output, Params, Table
from workloads.serving.experiments import Int, Protocol


class WarmupParams(Params):
    warmup: Annotated[list[Annotated[Int, Field(ge=0, le=100_000)]], Field(min_length=1)] = Field(
        default=[0, 1, 10, 100], description="warm-up request counts sent after each fresh load"
    )
    measured: Annotated[Int, Field(ge=1, le=1000)] = Field(default=5, description="first requests averaged")
    repeats: Annotated[Int, Field(ge=1, le=100)] = Field(default=2, description="trials per count (median)")
    protocol: Protocol = "grpc"


def warmup(ctx: Context, p: WarmupParams) -> Output:
    """N warm-up requests after a fresh model load vs the latency of the first measured requests."""
    import time

    import numpy as np

    from workloads.serving import harness, loadgen
    from workloads.serving.client import Client
    from workloads.serving.common import host_note, variant

    at_start = host_note()
    k, reps, proto = p.measured, p.repeats, p.protocol
    t = Table.of(
        "warmup",
        [("warm-up requests", ""), ("first request", "ms"), (f"mean of first {k}", "ms"), ("steady mean", "ms")],
        caption=f"Model unloaded and loaded again (explicit model control) before each trial; {proto}; "
        f"median over {reps} trials",
    )
    x = loadgen.default_inputs(1)
    with harness.serve(ctx, [variant("mlp")], control_mode="explicit", load_models=["mlp"], warm_requests=0) as srv:
        for n in p.warmup:
            firsts, means, steady = [], [], []
            for _ in range(reps):
                with Client(srv.address(proto), proto, timeout_s=30) as c:
                    c.unload("mlp")
                    while c.is_ready("mlp"):
                        time.sleep(0.05)
                    c.load("mlp")
                    for _ in range(n):
                        c.infer("mlp", x)
                    lats = []
                    for _ in range(k + 50):
                        t0 = time.perf_counter()
                        c.infer("mlp", x)
                        lats.append((time.perf_counter() - t0) * 1e3)
                firsts.append(lats[0])
                means.append(float(np.mean(lats[:k])))
                steady.append(float(np.mean(lats[k:])))
            t.add(
                n,
                round(float(np.median(firsts)), 3),
                round(float(np.median(means)), 3),
                round(float(np.median(steady)), 3),
            )
            ctx.log(f"warm-up {n}: first {np.median(firsts):.2f} ms")
    return Output(tables=[t], notes=[at_start])
