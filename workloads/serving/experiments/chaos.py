"""Chaos under load. d07.e5: SIGKILL tritonserver during an open-loop run; the supervisor restarts it. d28.e3
(fault_drill): Redis, the model and tritonserver fail in turn behind the gateway with a Redis cache in the path."""

from __future__ import annotations

import math
from collections import Counter
from typing import Annotated, Any, Literal, Self

import numpy as np
from pydantic import Field, model_validator

from ailab.contract import Column, Context, Output, Params, Series, Table
from workloads.serving import stats
from workloads.serving.experiments import Int, Num, Protocol, Seconds


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


# --- d28.e3: Redis, the model and tritonserver fail under load, behind the gateway, with the cache in the path --------

Fault = Literal["redis", "unload", "triton"]


class FaultDrillParams(Params):
    faults: Annotated[list[Fault], Field(min_length=1, max_length=3)] = Field(
        default=["redis", "unload", "triton"],
        description="in this order, one every fault_every_s: kill -9 Redis (restarted by the runner after "
        "redis_down_s), unload the model (loaded again after unload_s), kill -9 tritonserver (the supervisor "
        "restarts it)",
    )
    lead_s: Annotated[Num, Field(ge=1, le=120)] = Field(default=6.0, description="fault-free baseline first, s")
    fault_every_s: Annotated[Num, Field(ge=2, le=300)] = Field(default=10.0, description="time between faults, s")
    redis_down_s: Annotated[Num, Field(gt=0, le=60)] = Field(default=3.0, description="Redis outage length, s")
    unload_s: Annotated[Num, Field(gt=0, le=60)] = Field(default=2.0, description="model unloaded this long, s")
    concurrency: Annotated[Int, Field(ge=1, le=256)] = Field(default=8, description="closed-loop workers")
    hit_ratio: Annotated[Num, Field(ge=0, le=1)] = Field(default=0.5, description="share of hot (cacheable) inputs")
    pool_size: Annotated[Int, Field(ge=1, le=100_000)] = Field(default=200, description="hot inputs")
    ttl_s: Annotated[Num, Field(gt=0, le=86_400)] = Field(default=60.0, description="cache entries' TTL, s")
    backoff_s: Annotated[Num, Field(ge=0, le=10)] = Field(
        default=0.05, description="the generator's wait after a failed request, doubling per consecutive failure"
    )
    backoff_max_s: Annotated[Num, Field(gt=0, le=10)] = Field(default=0.5, description="cap of that wait, s")
    redis_timeout_s: Annotated[Num, Field(gt=0, le=5)] = Field(
        default=0.25, description="Redis call timeout, s (a hung Redis costs at most this, then breaker_s of bypass)"
    )
    breaker_s: Annotated[Num, Field(ge=0, le=60)] = Field(
        default=0.5, description="after a Redis failure, requests skip Redis this long (go straight to the model)"
    )
    bin_s: Annotated[Num, Field(ge=0.1, le=10)] = Field(default=0.5, description="p99 window of the recovery check")
    p99_bound_factor: Annotated[Num, Field(ge=1, le=100)] = Field(
        default=2.0, description="p99 is back within bounds when a window's p99 <= this x the baseline's p99"
    )

    @model_validator(mode="after")
    def _fits(self) -> Self:
        if self.backoff_max_s < self.backoff_s:
            raise ValueError(f"backoff_max_s {self.backoff_max_s:g} must be >= backoff_s {self.backoff_s:g}")
        for name in ("redis_down_s", "unload_s"):
            if getattr(self, name) >= self.fault_every_s:
                raise ValueError(
                    f"{name} {getattr(self, name):g} must be less than fault_every_s {self.fault_every_s:g} "
                    "(each fault has to end before the next one)"
                )
        if len(set(self.faults)) != len(self.faults):
            raise ValueError(f"faults {self.faults}: each fault at most once")
        return self

    @property
    def duration_s(self) -> float:
        """The load's window: baseline, one period per fault, and one spare period (a slow reload delays the next
        fault: it comes no earlier than half a period after the previous fault's action ended)."""
        return self.lead_s + self.fault_every_s * (len(self.faults) + 1)


def segment_report(
    log: list[Any], t_fault: float, t_next: float, bound_ms: float, bin_s: float, model_path_only: bool
) -> dict[str, Any]:
    """Requests that finished in [t_fault, t_next) (times in seconds on the log's clock; by finish time, so that a
    request sent just before the next fault and failed by it counts there): failures, time to the first success sent
    after the last failure, and to the first p99 window (bin_s wide, by send time, from the fault) within bound_ms
    without failures. model_path_only: only a request the model answered counts as the first success (cache hits
    answer while the model is away)."""
    if not math.isfinite(t_next):
        raise ValueError(f"t_next {t_next}: must be finite (the segment's end)")
    seg = [e for e in log if t_fault <= e.t_end < t_next]
    bad = [e for e in seg if e.error]
    last_bad = max((e.t_send for e in bad), default=t_fault)
    ok = [e for e in seg if not e.error and e.t_send >= last_bad and (e.path != "hit" or not model_path_only)]
    first = min((e.t_end for e in ok), default=math.nan) - t_fault
    p99_back = math.nan
    b = t_fault
    while b < t_next:
        win = [e for e in log if b <= e.t_send < b + bin_s]
        lat = np.sort([1e3 * (e.t_end - e.t_send) for e in win if not e.error])
        clean = win and not any(e.error for e in win) and len(lat) and stats.percentile(lat, 99) <= bound_ms
        if clean and b + bin_s - t_fault >= (first if first == first else 0):  # not before the first success
            p99_back = b + bin_s - t_fault
            break
        b += bin_s
    kinds = Counter(e.error for e in bad)
    paths = Counter(e.path for e in seg if not e.error)
    lat_all = np.sort([1e3 * (e.t_end - e.t_send) for e in seg if not e.error])
    return {
        "requests": len(seg),
        "failed": len(bad),
        "kinds": ", ".join(f"{k} {v}" for k, v in sorted(kinds.items())) or "none",
        "first_success_s": first,
        "p99_back_s": p99_back,
        "paths": paths,
        "p50_ms": stats.percentile(lat_all, 50) if len(lat_all) else math.nan,
        "p99_ms": stats.percentile(lat_all, 99) if len(lat_all) else math.nan,
    }


def fault_drill(ctx: Context, p: FaultDrillParams) -> Output:
    """Closed loop through HAProxy into tritonserver with a Redis cache in front: kill Redis, unload the model, kill
    tritonserver; per fault: failed requests, time to first success and to p99 within bounds; cache outage cost."""
    import asyncio
    import os
    import signal
    import time

    from ailab.contract import Substitute
    from workloads.serving import loadgen
    from workloads.serving.caching import CacheAside
    from workloads.serving.client import AsyncClient, Client
    from workloads.serving.common import host_note, variant
    from workloads.serving.repository import build_repository

    at_start = host_note()
    repo = build_repository([variant("mlp", preferred=(8, 16), delay_us=1000)], ctx.workdir / "models")
    gw_spec = {
        "frontends": [{"name": "api", "default_backend": "triton"}],
        "backends": [{"name": "triton", "servers": [{"name": "triton", "target": "triton.http"}]}],
    }
    opts = {
        "triton.model_repository": repo,
        "triton.model_control_mode": "explicit",
        "triton.load_models": ["mlp"],
        "haproxy.spec": gw_spec,
    }
    events: list[tuple[str, str, float]] = []  # (fault, what, perf_counter)
    with (
        ctx.platform(services=["triton", "haproxy"], state_dir=ctx.workdir / "st", options=opts, supervise=True) as gp,
        ctx.platform(services=["redis"], state_dir=ctx.workdir / "rs") as rp,
    ):
        gw = f"127.0.0.1:{gp.port('haproxy', 'api')}"
        grpc_addr = gp.address("triton", "grpc")
        redis_url = f"redis://{rp.address('redis', 'redis')}/0"
        triton_pid0 = gp.record("triton").pid

        def do(fault: str) -> None:
            now = time.perf_counter
            if fault == "redis":
                os.kill(rp.record("redis").pid, signal.SIGKILL)
                events.append((fault, "killed", now()))
                time.sleep(p.redis_down_s)
                rp.up()  # same port: the platform keeps the ports it chose
                events.append((fault, "restarted (empty)", now()))
            elif fault == "unload":
                with Client(grpc_addr, "grpc", timeout_s=30) as c:
                    events.append((fault, "unload requested", now()))
                    c.unload("mlp")
                    events.append((fault, "unloaded", now()))
                    time.sleep(p.unload_s)
                    c.load("mlp")
                events.append((fault, "loaded again", now()))
            else:
                os.kill(gp.record("triton").pid, signal.SIGKILL)
                events.append((fault, "killed", now()))

        async def drive() -> tuple[loadgen.LoadResult, CacheAside]:
            client = AsyncClient(gw, "http", timeout_s=5, retries=0)
            cache = CacheAside(
                client,
                redis_url,
                "mlp",
                hit_ratio=p.hit_ratio,
                pool_size=p.pool_size,
                ttl_s=p.ttl_s,
                redis_timeout_s=p.redis_timeout_s,
                breaker_s=p.breaker_s,
            )
            spec = loadgen.LoadSpec(
                gw,
                "mlp",
                "http",
                concurrency=p.concurrency,
                warmup_s=1.0,
                duration_s=p.duration_s,
                timeout_s=5,
                backoff_s=p.backoff_s,
                backoff_max_s=p.backoff_max_s,
                inputs={},
            )
            task = asyncio.create_task(loadgen.run_async(spec, client=cache))
            t0 = time.perf_counter() + spec.warmup_s
            ready = t0
            for i, f in enumerate(p.faults):
                at = max(t0 + p.lead_s + i * p.fault_every_s, ready)
                if at > t0 + p.duration_s - p.fault_every_s / 2:
                    events.append((f, "not done: the window ran out (earlier faults took longer)", at))
                    continue
                await asyncio.sleep(max(0.0, at - time.perf_counter()))
                await asyncio.to_thread(do, f)
                ready = time.perf_counter() + p.fault_every_s / 2
            return await task, cache

        res, cache = asyncio.run(drive())
        restarts = gp.restarts("triton")
        triton_pid1 = gp.record("triton").pid
    return _drill_output(p, res, cache, events, restarts, (triton_pid0, triton_pid1), at_start, Substitute)


def _drill_output(
    p: FaultDrillParams, res: Any, cache: Any, events: list, restarts: int, pids: tuple, at_start: str, substitute: Any
) -> Output:
    w0 = res.window_start
    log = [e for e in cache.log if e.t_send >= w0]
    for e in log:  # the window's clock: seconds from its start
        e.t_send, e.t_end = e.t_send - w0, e.t_end - w0
    events = [e for e in events if not e[1].startswith("not done")] + [e for e in events if e[1].startswith("not")]
    first_fault = min(t for _, _, t in events) - w0 if events else p.duration_s
    base = np.sort([1e3 * (e.t_end - e.t_send) for e in log if e.t_send < first_fault and not e.error])
    base_model = np.sort(
        [1e3 * (e.t_end - e.t_send) for e in log if e.t_send < first_fault and not e.error and e.path != "hit"]
    )
    base_p99 = stats.percentile(base, 99) if len(base) else math.nan
    bound = p.p99_bound_factor * base_p99
    starts = {}
    ends: dict[str, float] = {}
    for f, what, t in events:
        if not what.startswith("not done"):
            starts.setdefault(f, t - w0)
            ends[f] = t - w0
    order = [f for f in p.faults if f in starts]
    t = Table.of(
        "faults",
        [
            ("fault", ""),
            ("at", "s"),
            ("requests", ""),
            ("failed", ""),
            ("failed while the fault lasted", ""),
            ("failed by kind", ""),
            ("fault to first success", "s"),
            ("fault to p99 within bound", "s"),
            ("p50", "ms"),
            ("p99", "ms"),
            ("answered by cache / model / model (Redis skipped)", ""),
        ],
        caption=f"Closed loop, {p.concurrency} workers, HTTP through HAProxy into tritonserver, Redis cache in front "
        f"(hit_ratio {p.hit_ratio:g}, {p.pool_size} hot inputs, TTL {p.ttl_s:g} s); each row: requests sent from the "
        f"fault to the next one; p99 bound = {p.p99_bound_factor:g} x the baseline p99 ({base_p99:.3f} ms), checked "
        f"in {p.bin_s:g} s windows with no failure; first success = first answer after the fault's last failure "
        "(for model faults, an answer from the model, not a cache hit); 'while the fault lasted': sent between the "
        "fault and its end event (Redis restarted, model loaded again; for a killed tritonserver, the kill only)",
    )
    segs = {}
    for i, f in enumerate(order):
        nxt = starts[order[i + 1]] if i + 1 < len(order) else max((e.t_send for e in log), default=0.0) + 1e-9
        segs[f] = r = segment_report(log, starts[f], nxt, bound, p.bin_s, model_path_only=f != "redis")
        paths = r["paths"]
        t.add(
            f,
            round(starts[f], 3),
            r["requests"],
            r["failed"],
            sum(1 for e in log if e.error and starts[f] <= e.t_send <= ends[f]),
            r["kinds"],
            round(r["first_success_s"], 3),
            round(r["p99_back_s"], 3),
            round(r["p50_ms"], 3),
            round(r["p99_ms"], 3),
            f"{paths['hit']} / {paths['miss']} / {paths['bypass']}",
        )
    b = Table.of("baseline", [("measure", ""), ("value", ""), ("unit", "")])
    b.add("requests before the first fault", len(base), "")
    b.add("p50 / p99, all answers", f"{stats.percentile(base, 50):.3f} / {base_p99:.3f}", "ms")
    b.add("p50, answers from the model", round(stats.percentile(base_model, 50), 3), "ms")
    ev = Table.of("events", [("fault", ""), ("event", ""), ("at", "s")])
    for f, what, tt in events:
        ev.add(f, what, round(tt - w0, 3))
    g = Table.of("generator", [("measure", ""), ("value", ""), ("unit", "")])
    g.add("requests finished in the window", res.ok + sum(res.errors.values()), "")
    g.add("failed", sum(res.errors.values()), "")
    g.add("back-off policy", f"{p.backoff_s:g} s doubling to {p.backoff_max_s:g} s per worker", "")
    g.add("back-off waits", res.backoff_waits, "")
    g.add("generator CPU per request", round(res.generator_cpu_us_per_request, 1), "µs")
    g.add("Redis call failures (client)", ", ".join(f"{k} {v}" for k, v in cache.redis_errors.items()) or "none", "")
    g.add("tritonserver restarts by the supervisor", restarts, "")
    s = Series("timeline", x=Column("time", "s"), y=Column("value", ""))
    end = max((e.t_send for e in log), default=0.0)
    for b0 in np.arange(0, end + p.bin_s, p.bin_s):
        win = [e for e in log if b0 <= e.t_send < b0 + p.bin_s]
        lat = np.sort([1e3 * (e.t_end - e.t_send) for e in win if not e.error])
        s.point("p99 latency (ms)", float(b0), float(stats.percentile(lat, 99)) if len(lat) else 0.0)
        s.point(f"failed per {p.bin_s:g} s", float(b0), float(sum(1 for e in win if e.error)))
        s.point("cache hits (%)", float(b0), 100.0 * sum(1 for e in win if e.path == "hit") / max(1, len(win)))
    notes = [at_start, f"tritonserver pid {pids[0]} at start, {pids[1]} at the end."]
    if "redis" in segs:
        r = segs["redis"]
        down = [e for e in log if starts["redis"] <= e.t_send <= ends["redis"]]
        lat_down = np.sort([1e3 * (e.t_end - e.t_send) for e in down if not e.error])
        n_bad = sum(1 for e in down if e.error)
        verdict = "MET" if n_bad == 0 and down else "NOT MET"
        hit = min((e.t_end for e in log if e.path == "hit" and e.t_send > ends["redis"]), default=math.nan)
        notes.append(
            f"Cache outage degrades to the model path (latency, not errors): {verdict}. While Redis was down "
            f"({ends['redis'] - starts['redis']:.2f} s, kill to restart) {len(down)} requests were sent, {n_bad} "
            f"failed, {sum(1 for e in down if e.path == 'bypass')} skipped Redis; the first cache hit after the "
            f"restart (an empty cache, refilled by misses) came {hit - starts['redis']:.3f} s after the kill. Their "
            f"p50 was {stats.percentile(lat_down, 50):.3f} ms against {stats.percentile(base, 50):.3f} ms for all "
            f"answers and {stats.percentile(base_model, 50):.3f} ms for the model's answers before the fault."
        )
    if "unload" in segs:
        notes.append(
            "While the model is unloaded the cache keeps answering the hot inputs: the failures are the requests "
            "that had to reach the model (Triton answers 'not found/not ready', HAProxy passes it on)."
        )
    notes.append(
        f"The generator backs off after a failed request ({p.backoff_s:g} s, doubling to {p.backoff_max_s:g} s per "
        "worker, reset by a success): a dead server costs a bounded number of failed requests instead of a spin of "
        "instant connection errors, and the first success comes at most backoff_max_s after the server is back."
    )
    sub = substitute(
        instead_of="Redis connected to Triton as its response cache",
        used="a cache-aside Redis 7 client in front of HAProxy -> tritonserver (workloads/serving/caching.py "
        "CacheAside)",
        why="tritonserver 2.51 as pytriton ships it carries only the local cache (caches/local), no Redis cache",
    )
    return Output(tables=[t, b, ev, g], series=[s], notes=notes, substitute=sub)
