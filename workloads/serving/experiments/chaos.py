"""Chaos under load (d07.e5): SIGKILL tritonserver during an open-loop run; the supervisor restarts it."""

from __future__ import annotations

from typing import Annotated, Self

from pydantic import Field, model_validator

from ailab.contract import Column, Context, Output, Params, Series, Table
from workloads.serving.experiments import Num, Protocol, Seconds


class ChaosParams(Params):
    qps: Annotated[Num, Field(gt=0, le=100_000)] = Field(default=200.0, description="open-loop arrival rate, req/s")
    duration_s: Seconds = 12.0
    kill_at_s: Annotated[Num, Field(gt=0)] = Field(default=4.0, description="kill this long into the window, s")
    protocol: Protocol = Field(
        default="http", description="HTTP reconnects per request; gRPC backs off after a dead channel"
    )

    @model_validator(mode="after")
    def _kill_inside_the_window(self) -> Self:
        if self.kill_at_s >= self.duration_s:
            raise ValueError(
                f"kill_at_s {self.kill_at_s:g} must be less than duration_s {self.duration_s:g} "
                "(the kill has to happen inside the measured window)"
            )
        return self


def chaos(ctx: Context, p: ChaosParams) -> Output:
    """Kill tritonserver (SIGKILL) during an open-loop run; the supervisor restarts it: recovery time, errors, p99."""
    import os
    import signal
    import threading
    import time

    import numpy as np

    from workloads.serving import harness, loadgen
    from workloads.serving.common import host_note, lat, variant

    at_start = host_note()
    qps, dur, kill_at, proto = p.qps, p.duration_s, p.kill_at_s, p.protocol
    with harness.serve(ctx, [variant("mlp", preferred=(8, 16), delay_us=1000)], supervise=True) as srv:
        spec = loadgen.LoadSpec(
            srv.address(proto),
            "mlp",
            proto,
            mode="open",
            qps=qps,
            warmup_s=1.0,
            duration_s=dur,
            timeout_s=5,
            timeline=True,
        )
        victim = srv.pid
        killed: dict[str, float] = {}

        def kill() -> None:
            killed["t"] = time.perf_counter()
            os.kill(victim, signal.SIGKILL)

        loadgen.default_inputs(1)  # load the digits now so that the run starts right after the timer
        timer = threading.Timer(spec.warmup_s + kill_at, kill)
        timer.start()
        res = loadgen.run(spec)
        timer.cancel()
        restarts = srv.platform.restarts("triton")
        new_pid = srv.pid
    if "t" not in killed:
        raise RuntimeError("the kill did not happen inside the run")
    t_kill = killed["t"] - res.window_start  # seconds from window start
    tl = res.timeline
    errs = [s for s in tl if s[2]]
    after = [s for s in tl if s[0] >= t_kill]
    last_err = max((s[0] for s in errs), default=t_kill)
    first_ok = next((s for s in after if not s[2] and s[0] >= last_err), None)
    ttr = (first_ok[0] + first_ok[1] / 1e3 - t_kill) if first_ok else float("nan")

    def p99(lo: float, hi: float) -> float:
        v = np.sort([s[1] for s in tl if lo <= s[0] < hi and not s[2]])
        return round(loadgen.percentile(v, 99), 3) if len(v) else float("nan")

    t = Table.of(
        "chaos",
        [("metric", ""), ("value", ""), ("unit", "")],
        caption=f"Open loop {qps:g} req/s over {proto}; tritonserver SIGKILLed {kill_at:g} s into a {dur:g} s window",
    )
    t.add("restarts by the supervisor", restarts, "")
    t.add("time to recovery (kill -> first success after the last error)", round(ttr, 3), "s")
    t.add("errors (burst)", len(errs), "requests")
    t.add("error burst span", round((last_err - min(s[0] for s in errs)) if errs else 0.0, 3), "s")
    t.add("errors by kind", ", ".join(f"{k} {v}" for k, v in sorted(res.errors.items())) or "none", "")
    t.add("p99 before the kill", p99(0, t_kill), "ms")
    t.add("p99 from the kill to recovery + 1 s", p99(t_kill, t_kill + (ttr if ttr == ttr else 0) + 1), "ms")
    t.add("p99 after recovery + 1 s", p99(t_kill + (ttr if ttr == ttr else 0) + 1, dur), "ms")
    t.add("p99 whole window", lat(res, "p99"), "ms")
    s = Series("timeline", x=Column("time", "s"), y=Column("value", ""))
    for b in np.arange(0, dur, 0.5):
        win = [x for x in tl if b <= x[0] < b + 0.5]
        ok = np.sort([x[1] for x in win if not x[2]])
        s.point("p99 latency (ms)", float(b), float(loadgen.percentile(ok, 99)) if len(ok) else 0.0)
        s.point("errors per 0.5 s", float(b), float(sum(1 for x in win if x[2])))
    notes = [
        at_start,
        f"Killed pid {victim}; the supervisor started pid {new_pid}; the kill came {t_kill:.2f} s into the window.",
        "gRPC clients reconnect with exponential back-off after a dead channel, which lengthens the measured "
        "recovery; HTTP reconnects per request, so the default protocol here is HTTP.",
    ]
    return Output(tables=[t], series=[s], notes=notes)
