"""Load drivers compared (d32.e1): the lab generator (1 and n processes) vs perf_analyzer on the same model,
concurrency and protocol, with the CPU shared by server and drivers or pinned apart; ±10 % agreement reported as
MET/NOT MET; the generator's CPU per request by client (clientbench.py) and its ceiling; `lab up` time to ready."""

from __future__ import annotations

import math
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from typing import Annotated, Any, Literal

import numpy as np
from pydantic import Field

from ailab.contract import Context, Output, Params, Table
from workloads.serving.clientbench import VARIANTS
from workloads.serving.experiments import Concurrencies, Int, PaRequests, Protocol, Seconds

TOLERANCE = 0.10  # issue 15: the lab generator agrees with perf_analyzer within ±10 % (throughput and percentiles)
COMPARED = ("throughput", "p50", "p95", "p99")
COST_COLS = [
    ("variant", ""),
    ("concurrency", ""),
    ("cpu_us_per_request", "µs"),
    ("client_cores", "cores"),
    ("rps", "req/s"),
    ("p50_ms", "ms"),
    ("p99_ms", "ms"),
    ("server_cores", "cores"),
]


class DriversParams(Params):
    concurrency: Concurrencies = Field(default=[8, 32])
    processes: Annotated[list[Annotated[Int, Field(ge=1, le=16)]], Field(min_length=1)] = Field(
        default=[1, 2], description="lab generator process counts (one event loop each)"
    )
    protocols: Annotated[list[Protocol], Field(min_length=1)] = Field(
        default=["http", "grpc"], description="each compared like with like: perf_analyzer -i <the same protocol>"
    )
    duration_s: Seconds = 5.0
    pa_request_count: PaRequests = 200
    layouts: Annotated[list[Literal["shared", "pinned"]], Field(min_length=1)] = Field(
        default=["shared"],
        description="shared: server and drivers on every core (each driver's CPU is taken from the server); "
        "pinned: tritonserver on CPU 0, the drivers on CPU 1 (the drivers' accuracy without their intrusion)",
    )
    repeats: Annotated[Int, Field(ge=1, le=10, description="runs of each driver, alternating which goes first")] = 1
    client_variants: list[Literal[VARIANTS]] = Field(  # type: ignore[valid-type]
        default=list(VARIANTS), description="clientbench.py variants whose CPU per request is measured ([] = none)"
    )
    client_duration_s: Seconds = 3.0


def agreement(lab: dict[str, float], ref: dict[str, float], tolerance: float = TOLERANCE) -> tuple[str, list[str]]:
    """('MET' | 'NOT MET', the measures outside ±tolerance) of the lab's numbers against perf_analyzer's."""
    off = []
    for k in COMPARED:
        a, b = lab.get(k, math.nan), ref.get(k, math.nan)
        if not (b > 0 and abs(a / b - 1.0) <= tolerance):
            off.append(f"{k} {100.0 * a / b:.0f} %" if b > 0 else f"{k} (no reference)")
    return ("MET" if not off else "NOT MET"), off


@contextmanager
def cpu_layout(layout: str, server_pid: int) -> Iterator[str]:
    """Within: every thread of tritonserver (and its stubs) on CPU 0 and every thread of this process on CPU 1, so
    the drivers it starts (worker processes, perf_analyzer) inherit CPU 1; yields why not ("" when applied)."""
    import os

    import psutil

    from workloads.serving.harness import tree

    if layout == "shared":
        yield ""
        return
    cpus = sorted(os.sched_getaffinity(0))
    if len(cpus) < 2:
        yield f"needs 2 CPUs, this process may use {len(cpus)}"
        return

    def pin(procs: list[psutil.Process], cpu_set: set[int]) -> None:
        for proc in procs:
            with suppress(psutil.Error):
                for th in proc.threads():
                    with suppress(OSError):  # the thread ended meanwhile
                        os.sched_setaffinity(th.id, cpu_set)

    me = [psutil.Process()]
    pin(tree(server_pid), {cpus[0]})
    pin(me, {cpus[1]})
    try:
        yield ""
    finally:
        pin(me, set(cpus))
        pin(tree(server_pid), set(cpus))


def _median(runs: list[dict[str, float]]) -> dict[str, float]:
    """Each measure's median over repeated runs of one driver ({} when it never ran)."""
    if not runs:
        return {}
    return {k: float(np.median([r[k] for r in runs])) for k in runs[0]}


def drivers(ctx: Context, p: DriversParams) -> Output:
    """The lab generator and perf_analyzer on the same model/concurrency; the generator's ceiling; `lab up` time."""
    from workloads.serving import clientbench, harness
    from workloads.serving.common import host_note, variant

    at_start = host_note()
    dur = p.duration_s
    cols = [
        ("layout", ""),
        ("protocol", ""),
        ("driver", ""),
        ("concurrency", ""),
        ("repeat", ""),
        ("throughput", "req/s"),
        ("p50", "ms"),
        ("p95", "ms"),
        ("p99", "ms"),
        ("driver CPU", "cores"),
        ("driver CPU per request", "µs"),
        ("server CPU", "cores"),
        ("generator loop lag p99", "ms"),
        ("lab/perf_analyzer median", "%"),
    ]
    t = Table.of("drivers", cols, caption="MLP with dynamic batching, closed loop, each protocol like with like")
    agree = Table.of(
        "agreement",
        [
            ("layout", ""),
            ("protocol", ""),
            ("concurrency", ""),
            ("driver", ""),
            *((f"{k} lab/pa", "%") for k in COMPARED),
            ("within ±10 %", "MET/NOT MET"),
            ("driver CPU per request lab/pa", "%"),
        ],
        caption="issue 15's target: throughput and p50/p95/p99 (medians over the repeats) within ±10 % of "
        "perf_analyzer's",
    )
    ceil = Table.of("generator_ceiling", [("protocol", ""), ("measure", ""), ("value", ""), ("unit", "")])
    cost = Table.of(
        "client_cpu",
        COST_COLS,
        caption="the generator's CPU per request by client (clientbench.py; each in its own process, closed loop)",
    )
    notes = [at_start]
    clients: dict[str, str] = {}
    with harness.serve(ctx, [variant("mlp", preferred=(8, 16), delay_us=1000)]) as srv:
        for layout in p.layouts:
            with cpu_layout(layout, srv.pid) as why_not:
                if why_not:
                    notes.append(f"layout {layout}: not measured: {why_not}")
                    continue
                for proto in p.protocols:
                    for c in p.concurrency:
                        rows = _runs(ctx, srv, p, proto, c, notes, clients)
                        _tabulate(ctx, rows, layout, proto, c, t, agree)
                    if layout == "shared":
                        _ceiling(srv, proto, max(p.concurrency), dur, ceil)
        if p.client_variants:  # the micro-benchmark behind the choice of client (clientbench.py)
            urls = {pr: srv.address(pr) for pr in ("http", "grpc")}
            for row in clientbench.bench(
                urls, "mlp", p.client_variants, p.concurrency, 1.0, p.client_duration_s, server_pid=srv.pid
            ):
                if "error" in row:
                    notes.append(f"client variant {row['variant']} at concurrency {row['concurrency']}: {row['error']}")
                    continue
                cost.add(*(row[k] for k, _ in COST_COLS))
    up_t = Table.of("lab_up", [("step", ""), ("time", "s")], caption="`lab up --free-ports` in a fresh state dir (CLI)")
    try:
        for label, secs in _lab_up_times(ctx):
            up_t.add(label, round(secs, 2))
    except RuntimeError as exc:  # another service of the week failed: keep the driver results, say why
        notes.append(str(exc))
    for row in agree.rows:
        if row[3] == "lab loadgen":  # the generator every experiment uses (one process)
            notes.append(
                f"±10 % agreement with perf_analyzer, {row[1]} at concurrency {row[2]}, CPU {row[0]}: {row[-2]}"
            )
    notes.append(at_end_note(at_start))
    notes.append("lab generator clients: " + "; ".join(f"{k}: {v}" for k, v in clients.items()))
    notes.append(
        "The lab generator is Python: over HTTP a raw keep-alive HTTP/1.1 client with the request serialised once "
        "(workloads/serving/fastclient.py, on uvloop when installed), over gRPC grpc.aio with a pre-serialised "
        "request; perf_analyzer is C++ with one thread per request in flight. On 2 cores both share the CPU with "
        "tritonserver, so every µs of driver CPU per request is taken from the server ('server CPU'); and when the "
        "host is oversubscribed the generator's event loop is descheduled now and then and every request in flight "
        "waits for it ('generator loop lag p99'), where perf_analyzer loses only one thread's request. "
        "'x2 processes' splits the lab generator over two event loops (workers.py). Where the lab's driver CPU "
        "per request is below perf_analyzer's (agreement table), a lab throughput above perf_analyzer's is "
        "perf_analyzer's own cost taken from the server, and the other way round. Layout 'pinned' puts every "
        "tritonserver thread on CPU 0 and the drivers on CPU 1 (other tenants of the host still use both): the "
        "drivers then no longer take CPU from the server, and what remains between them is each one's own "
        "client-side latency, which in a closed loop sets the throughput."
    )
    return Output(tables=[t, agree, cost, ceil, up_t], notes=notes)


Run = tuple[str, int, dict[str, float], list[Any]]  # driver, repeat, measures, other cells of its row


def _runs(ctx: Context, srv: Any, p: DriversParams, proto: str, c: int, notes: list[str], clients: dict) -> list[Run]:
    """p.repeats runs of perf_analyzer and of the lab generator (each process count) at concurrency c."""
    from workloads.serving import perf
    from workloads.serving.common import load, pa

    rows: list[Run] = []
    for rep in range(p.repeats):
        # Alternate who goes first, so a drift in the host's load does not always favour one driver.
        for who in ("lab", "pa") if rep % 2 == 0 else ("pa", "lab"):
            if who == "pa":
                try:
                    res, pa_cpu, pa_srv = pa(srv, "mlp", proto, c, 1, p.pa_request_count, ctx.workdir / "pa")
                except perf.PerfAnalyzerError as exc:
                    notes.append(f"perf_analyzer ({proto}) at concurrency {c} failed: {exc}")
                    continue
                per_req = pa_cpu / res.throughput_rps * 1e6 if res.throughput_rps else math.nan
                m = {
                    "throughput": res.throughput_rps,
                    "p50": res.p50_ms,
                    "p95": res.p95_ms,
                    "p99": res.p99_ms,
                    "cpu_us": per_req,
                }
                rows.append(("perf_analyzer", rep, m, [round(pa_cpu, 2), round(per_req, 1), round(pa_srv, 2), ""]))
                continue
            for n in p.processes:  # the lab generator in 1 process, then over n processes (workers.py)
                if c < n:
                    continue
                kw = {"concurrency": c, "warmup_s": 1.0, "duration_s": p.duration_s, "processes": n}
                lab, srv_cpu = load(srv, "mlp", protocol=proto, **kw)
                clients.setdefault(f"{proto}, {n} process(es)", lab.client)
                m = {
                    "throughput": lab.throughput_rps,
                    **{k: lab.latency_ms.get(k, math.nan) for k in COMPARED[1:]},
                    "cpu_us": lab.generator_cpu_us_per_request,
                }
                cells = [
                    round(lab.generator_cpu, 2),
                    round(lab.generator_cpu_us_per_request, 1),
                    round(srv_cpu, 2),
                    round(lab.loop_lag_ms.get("p99", math.nan), 2),
                ]
                rows.append(("lab loadgen" + (f" x{n} processes" if n > 1 else ""), rep, m, cells))
    return rows


def _tabulate(ctx: Context, rows: list[Run], layout: str, proto: str, c: int, t: Table, agree: Table) -> None:
    """Every run as a row of t; each lab driver's medians against perf_analyzer's as a row of agree."""
    ref = _median([m for d, _, m, _ in rows if d == "perf_analyzer"])
    for d, rep, m, cells in rows:
        ratio = 100.0 * m["throughput"] / ref["throughput"] if ref.get("throughput") else math.nan
        t.add(
            layout,
            proto,
            d,
            c,
            rep + 1,
            round(m["throughput"], 1),
            *(round(m[k], 3) for k in COMPARED[1:]),
            *cells,
            round(ratio, 1),
        )
    for d in dict.fromkeys(d for d, _, _, _ in rows if d != "perf_analyzer"):
        mine = _median([m for dd, _, m, _ in rows if dd == d])
        verdict, _ = agreement(mine, ref)
        pct = (round(100.0 * mine[k] / ref[k], 1) if ref.get(k) else math.nan for k in COMPARED)
        cpu = 100.0 * mine["cpu_us"] / ref["cpu_us"] if ref.get("cpu_us") else math.nan
        agree.add(layout, proto, c, d, *pct, verdict, round(cpu, 1))
        ctx.log(f"{layout} {proto} c={c} {d}: {verdict} ({mine} vs perf_analyzer {ref})")


def _ceiling(srv: Any, proto: str, top: int, dur: float, ceil: Table) -> None:
    """The generator's CPU per request at the top concurrency; one event loop on one core bounds it at 1/cost."""
    from workloads.serving.common import load

    r, _ = load(srv, "mlp", protocol=proto, concurrency=top, warmup_s=1.0, duration_s=dur)
    per_req_us = r.generator_cpu_us_per_request
    ceil.add(proto, f"closed loop c={top}: generator CPU per request", round(per_req_us, 1), "µs")
    if per_req_us > 0:
        ceil.add(proto, "  -> ceiling with one core for the generator", round(1e6 / per_req_us, 0), "req/s")


def at_end_note(at_start: str) -> str:
    """The host's load average when the measurements ended (the start's is in the first note)."""
    import os

    la = os.getloadavg()
    return f"host load average {la[0]:.1f}/{la[1]:.1f}/{la[2]:.1f} (1/5/15 min) at the end"


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
