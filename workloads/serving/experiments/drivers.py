"""Load drivers compared (d32.e1): the lab generator (1 and n processes) vs perf_analyzer on the same model and
concurrency, the generator's CPU ceiling, and how long `lab up` takes to a ready server."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field

from ailab.contract import Context, Output, Params, Table
from workloads.serving.experiments import Concurrencies, Int, PaRequests, Protocol, Seconds


class DriversParams(Params):
    concurrency: Concurrencies = Field(default=[8, 32])
    processes: Annotated[list[Annotated[Int, Field(ge=1, le=16)]], Field(min_length=1)] = Field(
        default=[1, 2], description="lab generator process counts (one event loop each)"
    )
    protocol: Protocol = "grpc"
    duration_s: Seconds = 5.0
    pa_request_count: PaRequests = 200


def drivers(ctx: Context, p: DriversParams) -> Output:
    """The lab generator and perf_analyzer on the same model/concurrency; the generator's ceiling; `lab up` time."""
    from workloads.serving import harness, perf
    from workloads.serving.common import host_note, lat, load, pa, variant

    at_start = host_note()
    proto, dur = p.protocol, p.duration_s
    cols = [
        ("driver", ""),
        ("concurrency", ""),
        ("throughput", "req/s"),
        ("p50", "ms"),
        ("p95", "ms"),
        ("p99", "ms"),
        ("driver CPU", "cores"),
        ("driver CPU per request", "µs"),
        ("server CPU", "cores"),
        ("generator loop lag p99", "ms"),
        ("lab/perf_analyzer", "%"),
    ]
    t = Table.of("drivers", cols, caption=f"MLP with dynamic batching, {proto}, closed loop")
    ceil = Table.of("generator_ceiling", [("measure", ""), ("value", ""), ("unit", "")])
    notes = [at_start]
    with harness.serve(ctx, [variant("mlp", preferred=(8, 16), delay_us=1000)]) as srv:
        for c in p.concurrency:
            labs = []
            for n in p.processes:  # the lab generator in 1 process, then split over n processes (workers.py)
                if c >= n:
                    labs.append(
                        (n, *load(srv, "mlp", protocol=proto, concurrency=c, warmup_s=1.0, duration_s=dur, processes=n))
                    )
            try:
                res, pa_cpu, pa_srv = pa(srv, "mlp", proto, c, 1, p.pa_request_count, ctx.workdir / "pa")
            except perf.PerfAnalyzerError as exc:
                notes.append(f"perf_analyzer at concurrency {c} failed: {exc}")
                continue
            for n, lab, srv_cpu in labs:
                ratio = 100.0 * lab.throughput_rps / res.throughput_rps if res.throughput_rps else float("nan")
                t.add(
                    "lab loadgen" + (f" x{n} processes" if n > 1 else ""),
                    c,
                    round(lab.throughput_rps, 1),
                    lat(lab, "p50"),
                    lat(lab, "p95"),
                    lat(lab, "p99"),
                    round(lab.generator_cpu, 2),
                    round(lab.generator_cpu / lab.throughput_rps * 1e6, 1) if lab.throughput_rps else float("nan"),
                    round(srv_cpu, 2),
                    round(lab.loop_lag_ms.get("p99", float("nan")), 2),
                    round(ratio, 1),
                )
            t.add(
                "perf_analyzer",
                c,
                round(res.throughput_rps, 1),
                round(res.p50_ms, 3),
                round(res.p95_ms, 3),
                round(res.p99_ms, 3),
                round(pa_cpu, 2),
                round(pa_cpu / res.throughput_rps * 1e6, 1) if res.throughput_rps else float("nan"),
                round(pa_srv, 2),
                "",
                100.0,
            )
            if labs:
                ctx.log(f"c={c}: lab {labs[0][1].throughput_rps:.0f} vs perf_analyzer {res.throughput_rps:.0f} req/s")
        # Ceiling: the generator's CPU per request; its asyncio loop runs on one core, so 1 core / cost bounds it.
        top = max(p.concurrency)
        r, _ = load(srv, "mlp", protocol=proto, concurrency=top, warmup_s=1.0, duration_s=dur)
        per_req_us = r.generator_cpu / r.throughput_rps * 1e6 if r.throughput_rps else float("nan")
        ceil.add(f"closed loop c={top}: generator CPU per request", round(per_req_us, 1), "µs")
        ceil.add("  -> ceiling with one core for the generator", round(1e6 / per_req_us, 0), "req/s")
    up_t = Table.of("lab_up", [("step", ""), ("time", "s")], caption="`lab up --free-ports` in a fresh state dir (CLI)")
    try:
        for label, secs in _lab_up_times(ctx):
            up_t.add(label, round(secs, 2))
    except RuntimeError as exc:  # another service of the week failed: keep the driver results, say why
        notes.append(str(exc))
    notes.append(
        "The lab generator is Python (asyncio + tritonclient); perf_analyzer is C++ with one thread per request "
        "in flight. On 2 cores both share the CPU with tritonserver. When the host is oversubscribed, the "
        "generator's single event-loop thread is descheduled now and then and every request in flight waits for "
        "it ('generator loop lag p99'): in a closed loop that longer tail means fewer requests per second, while "
        "perf_analyzer loses only the one thread's request. And on a saturated host every µs of driver CPU per "
        "request is taken from the server ('server CPU'). Compare the driver CPU per request, server CPU and "
        "loop lag columns; 'x2 processes' splits the lab generator to bound the loop lag."
    )
    return Output(tables=[t, ceil, up_t], notes=notes)


def _lab_up_times(ctx: Context) -> list[tuple[str, float]]:
    """`lab up` (a fresh state dir), `lab up` again and `lab down`, each timed as the user runs them (CLI)."""
    import json
    import os
    import subprocess
    import sys
    import time

    env = {**os.environ, "AILAB_STATE_DIR": str(ctx.workdir / "lab_up_state")}
    lab = [sys.executable, "-m", "ailab.cli"]
    out = []
    t0 = time.perf_counter()
    p = subprocess.run([*lab, "up", "--free-ports", "--json"], env=env, capture_output=True, text=True, check=False)
    wall = time.perf_counter() - t0
    try:
        if p.returncode != 0:
            raise RuntimeError(f"lab up failed: {p.stderr[-2000:]}")
        rep = json.loads(p.stdout.strip().splitlines()[-1])
        out.append(("lab up, whole command (python start, repository build, server ready)", wall))
        out += [(f"  {name}: launch -> ready", secs) for name, secs in rep["started"].items()]
        t0 = time.perf_counter()
        subprocess.run([*lab, "up", "--free-ports", "--json"], env=env, capture_output=True, check=True)
        out.append(("lab up again (already running: nothing started)", time.perf_counter() - t0))
    finally:
        t0 = time.perf_counter()
        subprocess.run([*lab, "down"], env=env, capture_output=True, check=False)
        out.append(("lab down", time.perf_counter() - t0))
    return out
