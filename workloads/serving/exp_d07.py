"""Day 7 (serving under load) on the local tritonserver: QPS sweep and knee, warm-up, and a chaos kill."""

from __future__ import annotations

import os
import signal
import threading
import time

import numpy as np

from ailab.contract import Column, Context, Output, Series, Table
from workloads.serving import harness, loadgen
from workloads.serving.client import Client
from workloads.serving.common import errors, host_note, lat, load, variant


def qps_sweep(ctx: Context) -> Output:
    """Open-loop Poisson load from 100 QPS up (until saturation): p50/p95/p99, queue time per step, and the knee."""
    steps = [float(q) for q in ctx.param("qps", [100, 200, 400, 600, 800, 1000, 1500, 2000])]
    dur = float(ctx.param("duration_s", 4))
    proto = str(ctx.param("protocol", "grpc"))
    knee_factor = float(ctx.param("knee_factor", 2.0))
    t = Table.of(
        "qps_sweep",
        [
            ("target", "req/s"),
            ("achieved", "req/s"),
            ("throughput", "req/s"),
            ("p50", "ms"),
            ("p95", "ms"),
            ("p99", "ms"),
            ("server queue", "ms/req"),
            ("avg batch", ""),
            ("send lag p99", "ms"),
            ("errors", ""),
            ("verdict", ""),
        ],
        caption=f"MLP with dynamic batching, {proto}, Poisson arrivals, {dur:g} s per step after 1 s warm-up",
    )
    s = Series("latency_vs_qps", x=Column("target", "req/s"), y=Column("latency", "ms"))
    rows = []
    with harness.serve(ctx.workdir, [variant("mlp", preferred=(8, 16), delay_us=1000)]) as srv:
        for q in steps:
            res, _ = load(srv, "mlp", protocol=proto, mode="open", qps=q, warmup_s=1.0, duration_s=dur, timeout_s=30)
            queue = res.server.get("queue_us", 0.0) / 1e3
            t.add(
                q,
                round(res.achieved_qps, 1),
                round(res.throughput_rps, 1),
                lat(res, "p50"),
                lat(res, "p95"),
                lat(res, "p99"),
                round(queue, 3),
                round(res.server.get("avg_batch", 0), 2),
                round(res.send_lag_ms.get("p99", 0), 2),
                errors(res),
                res.verdict,
            )
            for p in ("p50", "p95", "p99"):
                s.point(p, q, res.latency_ms[p])
            s.point("server queue", q, queue)
            rows.append((q, res))
            ctx.log(f"{q:.0f} QPS: {res.throughput_rps:.0f} req/s, p99 {res.latency_ms['p99']:.1f} ms ({res.verdict})")
            if res.throughput_rps < 0.8 * q:  # saturated: further steps only queue up
                break
    out = Output(tables=[t], series=[s], notes=[host_note()])
    base = rows[0][1].latency_ms["p99"]
    knee = None
    for q, res in rows:
        met = res.throughput_rps >= (1 - loadgen.shortfall_tolerance(q, res.window_s)) * q
        if res.latency_ms["p99"] > knee_factor * base or not met:
            break
        knee = q
    out.notes.append(
        f"Knee: the highest step whose p99 stayed within {knee_factor:g}x the first step's p99 and whose throughput "
        f"met the target: {knee:g} req/s."
        if knee is not None
        else "Knee: already at the first step."
    )
    return out


def warmup(ctx: Context) -> Output:
    """N warm-up requests after a fresh model load vs the latency of the first measured requests."""
    ns = [int(n) for n in ctx.param("warmup", [0, 1, 10, 100])]
    k = int(ctx.param("measured", 5))
    reps = int(ctx.param("repeats", 2))
    proto = str(ctx.param("protocol", "grpc"))
    t = Table.of(
        "warmup",
        [("warm-up requests", ""), ("first request", "ms"), (f"mean of first {k}", "ms"), ("steady mean", "ms")],
        caption=f"Model unloaded and loaded again (explicit model control) before each trial; {proto}; "
        f"median over {reps} trials",
    )
    x = loadgen.default_inputs(1)
    with harness.serve(
        ctx.workdir, [variant("mlp")], control_mode="explicit", load_models=["mlp"], warm_requests=0
    ) as srv:
        for n in ns:
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
    return Output(tables=[t], notes=[host_note()])


def chaos(ctx: Context) -> Output:
    """Kill tritonserver (SIGKILL) during an open-loop run; the supervisor restarts it: recovery time, errors, p99."""
    qps = float(ctx.param("qps", 200))
    dur = float(ctx.param("duration_s", 12))
    kill_at = float(ctx.param("kill_at_s", 4))
    proto = str(ctx.param("protocol", "http"))
    with harness.serve(ctx.workdir, [variant("mlp", preferred=(8, 16), delay_us=1000)], supervise=True) as srv:
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
        host_note(),
        f"Killed pid {victim}; the supervisor started pid {new_pid}; the kill came {t_kill:.2f} s into the window.",
        "gRPC clients reconnect with exponential back-off after a dead channel, which lengthens the measured "
        "recovery; HTTP reconnects per request, so the default protocol here is HTTP.",
    ]
    return Output(tables=[t], series=[s], notes=notes)
