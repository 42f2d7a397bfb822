"""Weighted routing and canaries through HAProxy in front of tritonserver (d40.e1-e5, d34.e5, d35.e3).

Two versions of one model in one Triton; HAProxy's `canary` backend has a weighted server per version (see
workloads/gateway/stack.py). The split is measured from the responses (the answering server's header and the
`model_version` in the body) and from HAProxy's own Prometheus exporter; weights change through the runtime API
under load.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import time
from typing import Annotated, Any, Literal, Self

from pydantic import Field, model_validator

from ailab.contract import Column, Context, Output, Params, Series, Substitute, Table
from workloads.gateway import drill, load, runtime
from workloads.gateway.experiments import Int, Num, Weight
from workloads.gateway.stack import (
    CANARY,
    DASHBOARD,
    MODEL,
    SPLIT_PANEL,
    Gateway,
    canary_spec,
    gateway,
    panel_query,
    version_server,
)

Pair = Annotated[list[Weight], Field(min_length=2, max_length=2)]  # [v1 weight, v2 weight]


def _pair_ok(pairs: list[list[int]], field: str) -> None:
    for i, w in enumerate(pairs):
        if sum(w) == 0:
            raise ValueError(f"{field}.{i} {w}: weights sum to zero, no version would get traffic")


def _weights(pair: list[int]) -> dict[int, int]:
    return {1: pair[0], 2: pair[1]}


def _expected(pair: list[int]) -> float:
    return 100.0 * pair[0] / sum(pair)


def _pct(vals: list[float], p: float) -> float:
    return round(load.percentile(vals, p), 3)


def _backend_section(cfg_path: str) -> list[str]:
    """The generated config's weighted backend, for the report (the config itself lives under the state dir)."""
    lines = open(cfg_path).read().splitlines()  # noqa: SIM115 - a small generated file
    start = lines.index(f"backend {CANARY}")
    end = next((i for i in range(start + 1, len(lines)) if not lines[i].strip()), len(lines))
    return lines[start:end]


def _host_note(run: load.Run) -> str:
    return (
        f"load generator: {load.CLIENT}, closed loop on this host, {run.cpu_us_per_request:.0f} us of its own CPU per "
        "request; host shared (2 cores, other agents): latencies include that load"
    )


# --- d40.e1, d40.e2, d34.e5: split and latency per version at fixed weights --------------------------------------
class SplitParams(Params):
    weights: list[Pair] = Field(default=[[70, 30]], min_length=1, description="[v1, v2] HAProxy weights per step")
    concurrency: list[Annotated[Int, Field(ge=1, le=256)]] = Field(default=[8], min_length=1)
    requests: Annotated[Int, Field(ge=100, le=200_000)] = Field(default=4000, description="per step and concurrency")
    max_s: Annotated[Num, Field(gt=0, le=120)] = Field(default=60.0, description="time cap per step, s")
    window: Annotated[Int, Field(ge=10, le=10_000)] = Field(default=100, description="requests per fairness window")

    @model_validator(mode="after")
    def _sums(self) -> Self:
        _pair_ok(self.weights, "weights")
        return self


def weighted_split(ctx: Context, p: SplitParams) -> Output:
    """Measured v1/v2 split and per-version latency through HAProxy at each weight pair and concurrency."""
    split = Table.of(
        "split",
        [
            ("weights", "v1:v2"),
            ("concurrency", ""),
            ("requests", ""),
            ("failed", ""),
            ("v1_expected", "%"),
            ("v1_measured", "%"),
            ("error", "pp"),
            ("v1_haproxy", "%"),
            ("worst_window_error", "pp"),
            ("version_mismatch", ""),
        ],
        caption="v1_measured from responses (X-Served-By and model_version agree: version_mismatch counts those "
        "that do not); v1_haproxy from the exporter's haproxy_server_http_responses_total deltas; worst_window_error: "
        f"largest |v1 share - expected| over consecutive windows of {p.window} answers",
    )
    lat = Table.of(
        "latency",
        [
            ("weights", "v1:v2"),
            ("concurrency", ""),
            ("version", ""),
            ("answers", ""),
            ("p50", "ms"),
            ("p90", "ms"),
            ("p99", "ms"),
            ("throughput", "req/s"),
        ],
    )
    cpu = []
    with gateway(ctx, canary_spec(_weights(p.weights[0]))) as gw:
        for pair in p.weights:
            for conc in p.concurrency:
                before = runtime.scrape(gw.metrics_url)
                run = asyncio.run(_split_step(gw, pair, conc, p))
                after = runtime.scrape(gw.metrics_url)
                cpu.append(run)
                st = drill.stats(run.samples)
                d = {s: after_v - _get(before, s) for s, after_v in _responses(after).items()}
                hx = 100.0 * d.get("v1", 0) / max(1.0, sum(d.values()))
                exp = _expected(pair)
                ok = [s for s in run.samples if s.status == 200]
                worst = _worst_window(ok, p.window, exp)
                split.add(
                    f"{pair[0]}:{pair[1]}",
                    conc,
                    st.requests,
                    st.failed,
                    round(exp, 2),
                    round(st.share("v1"), 2),
                    round(st.share("v1") - exp, 2),
                    round(hx, 2),
                    round(worst, 2),
                    st.mismatched,
                )
                for server in ("v1", "v2"):
                    vals = st.lat.get(server, [])
                    lat.add(
                        f"{pair[0]}:{pair[1]}",
                        conc,
                        server,
                        len(vals),
                        _pct(vals, 50),
                        _pct(vals, 90),
                        _pct(vals, 99),
                        round(len(vals) / run.wall_s, 1),
                    )
        notes = ["generated HAProxy backend (initial weights; steps change them with `set weight`):"]
        notes += ["    " + line for line in _backend_section(gw.config)]
    notes.append(_host_note(_merge(cpu)))
    notes.append(
        "HAProxy's weighted round robin interleaves servers deterministically, so the split is exact per cycle of "
        "sum(weights) requests; the error column is what remains after a run that does not end on a cycle boundary"
    )
    return Output(tables=[split, lat], notes=notes)


async def _split_step(gw: Gateway, pair: list[int], conc: int, p: SplitParams) -> load.Run:
    await drill.apply(gw.socket, _weights(pair))
    async with load.Client(gw.url("api")) as c:
        await load.closed_loop(c, conc, max(conc * 4, 20), 10)  # warm connections and both versions
        return await load.closed_loop(c, conc, p.requests, p.max_s)


def _responses(samples: dict) -> dict[str, float]:
    return runtime.server_values(samples, "haproxy_server_http_responses_total", CANARY, code="2xx")


def _get(samples: dict, server: str) -> float:
    return _responses(samples).get(server, 0.0)


def _worst_window(ok: list[load.Sample], window: int, expected: float) -> float:
    ok = sorted(ok, key=lambda s: s.t_s)
    worst = 0.0
    for i in range(0, len(ok) - window + 1, window):
        share = 100.0 * sum(1 for s in ok[i : i + window] if s.server == "v1") / window
        worst = max(worst, abs(share - expected))
    return worst


def _merge(runs: list[load.Run]) -> load.Run:
    m = load.Run()
    for r in runs:
        m.samples += r.samples
        m.cpu_s += r.cpu_s
        m.wall_s += r.wall_s
    return m


# --- d40.e3, d35.e3: weights changed under load through the runtime API ------------------------------------------
class SwitchParams(Params):
    weights: list[Pair] = Field(default=[[70, 30], [50, 50]], min_length=2, description="[v1, v2] per phase")
    phase_s: Annotated[Num, Field(ge=0.5, le=120)] = Field(default=5.0, description="length of each phase, s")
    concurrency: Annotated[Int, Field(ge=1, le=256)] = 8
    max_requests: Annotated[Int, Field(ge=100, le=500_000)] = 100_000

    @model_validator(mode="after")
    def _sums(self) -> Self:
        _pair_ok(self.weights, "weights")
        return self


def live_switch(ctx: Context, p: SwitchParams) -> Output:
    """Weights switched phase by phase under continuous load; split, latency and failed requests per phase."""
    phases = [drill.Phase(f"{w[0]}:{w[1]}", _weights(w), p.phase_s) for w in p.weights]
    with gateway(ctx, canary_spec(phases[0].weights)) as gw:

        async def go() -> tuple[load.Run, list[drill.Boundary]]:
            async with load.Client(gw.url("api")) as c:
                await load.closed_loop(c, p.concurrency, p.concurrency * 4, 10)
                return await drill.run_phases(c, gw.socket, phases, p.concurrency, p.max_requests)

        run, bounds = asyncio.run(go())
        read_back = {s: runtime.get_weight(gw.socket, CANARY, version_server(s)) for s in (1, 2)}
    tables, series = _phase_tables(run, bounds, phases)
    failed = sum(1 for s in run.samples if s.status != 200)
    final = phases[-1].weights
    summary = Table.of(
        "reliability",
        [("requests", ""), ("failed", ""), ("switches", ""), ("final_weights_read_back", "v1:v2"), ("zero_failed", "")],
    )
    summary.add(len(run.samples), failed, len(bounds) - 1, f"{read_back[1]}:{read_back[2]}", failed == 0)
    notes = [
        _host_note(run),
        f"weights read back with `get weight` after the run {'match' if read_back == final else 'DIFFER from'} "
        "the last phase's",
    ]
    return Output(tables=[summary, *tables], series=series, notes=notes)


def _phase_tables(
    run: load.Run, bounds: list[drill.Boundary], phases: list[drill.Phase]
) -> tuple[list[Table], list[Series]]:
    t = Table.of(
        "phases",
        [
            ("phase", ""),
            ("weights", "v1:v2"),
            ("applied_at", "s"),
            ("runtime_api", "ms"),
            ("requests", ""),
            ("failed", ""),
            ("v1_expected", "%"),
            ("v1_measured", "%"),
            ("v1_p50", "ms"),
            ("v1_p99", "ms"),
            ("v2_p50", "ms"),
            ("v2_p99", "ms"),
        ],
        caption="requests attributed to the phase in which they were sent (a request sent while the runtime API "
        "applies a change may still go by the old weights)",
    )
    by_phase = drill.split_by_phase(run.samples, bounds)
    for b, ph, ss in zip(bounds, phases, by_phase, strict=True):
        st = drill.stats(ss)
        w = [ph.weights[1], ph.weights[2]]
        t.add(
            b.phase,
            f"{w[0]}:{w[1]}",
            round(b.t_s, 3),
            round(b.apply_ms, 3),
            st.requests,
            st.failed,
            round(_expected(w), 2),
            round(st.share("v1"), 2),
            _pct(st.lat.get("v1", []), 50),
            _pct(st.lat.get("v1", []), 99),
            _pct(st.lat.get("v2", []), 50),
            _pct(st.lat.get("v2", []), 99),
        )
    share = Series("v1_share", x=_col("time", "s"), y=_col("v1 share of answers", "%"))
    ok = sorted((s for s in run.samples if s.status == 200), key=lambda s: s.t_s)
    step = 0.5
    i = 0
    while i < len(ok):
        t0 = ok[i].t_s
        j = i
        while j < len(ok) and ok[j].t_s < t0 + step:
            j += 1
        win = ok[i:j]
        share.point("measured", round(t0, 2), round(100.0 * sum(1 for s in win if s.server == "v1") / len(win), 2))
        i = j
    return [t], [share]


def _col(name: str, unit: str) -> Column:
    return Column(name, unit)


# --- d40.e4: rollback during a canary -------------------------------------------------------------------------
class RollbackParams(Params):
    canary_steps: list[Pair] = Field(default=[[100, 0], [90, 10], [70, 30]], min_length=1)
    step_s: Annotated[Num, Field(ge=0.5, le=60)] = 3.0
    fault_after_s: Annotated[Num, Field(ge=0.5, le=60)] = Field(
        default=2.0, description="into the last canary step, the canary version is unloaded from Triton"
    )
    modes: list[Literal["gate", "health_check"]] = Field(
        default=["gate", "health_check"],
        min_length=1,
        description="gate: the clients' failures from v2 set its weight to 0 through the runtime API; "
        "health_check: HAProxy checks /v2/models/<m>/versions/<v>/ready every second and takes v2 out itself",
    )
    gate_failures: Annotated[Int, Field(ge=1, le=1000)] = Field(
        default=3, description="failed answers from the canary server that trigger the gate's rollback"
    )
    recovery_s: Annotated[Num, Field(ge=0.5, le=60)] = Field(default=4.0, description="load kept after rollback, s")
    concurrency: Annotated[Int, Field(ge=1, le=256)] = 8
    max_requests: Annotated[Int, Field(ge=100, le=500_000)] = 100_000

    @model_validator(mode="after")
    def _sums(self) -> Self:
        _pair_ok(self.canary_steps, "canary_steps")
        if self.canary_steps[-1][1] == 0:
            raise ValueError(f"canary_steps {self.canary_steps}: the last step must send traffic to v2 (weight > 0)")
        return self


def canary_rollback(ctx: Context, p: RollbackParams) -> Output:
    """Canary v2 ramped by weight; v2 fails (unloaded from Triton); taken out by a failure gate or by health checks."""
    drills = []
    for mode in dict.fromkeys(p.modes):
        spec = canary_spec(_weights(p.canary_steps[0]), health_check=mode == "health_check")
        with gateway(ctx, spec, explicit=True) as gw:
            run, events = asyncio.run(_rollback_drill(gw, p, mode))
            after = {v: runtime.get_weight(gw.socket, CANARY, version_server(v)) for v in (1, 2)}
            status = {r["svname"]: r["status"] for r in runtime.show_stat(gw.socket) if r["pxname"] == CANARY}
        drills.append((mode, run, events, after, status))
    return _rollback_output(drills, p)


def _unload_v2(triton_url: str) -> None:
    """Reload the model with only version 1 (Triton's repository API): version 2 stops answering, a broken canary."""
    import json
    import urllib.request

    with urllib.request.urlopen(f"{triton_url}/v2/models/{MODEL}/config", timeout=10) as r:
        cfg = json.loads(r.read())
    cfg["version_policy"] = {"specific": {"versions": [1]}}
    body = json.dumps({"parameters": {"config": json.dumps(cfg)}}).encode()
    req = urllib.request.Request(f"{triton_url}/v2/repository/models/{MODEL}/load", data=body, method="POST")
    with urllib.request.urlopen(req, timeout=60) as r:
        r.read()


async def _rollback_drill(gw: Gateway, p: RollbackParams, mode: str) -> tuple[load.Run, dict[str, float]]:
    events: dict[str, float] = {}
    failures = 0
    done = asyncio.Event()
    t0 = time.perf_counter()

    def on_sample(s: load.Sample) -> None:
        # a failure is the canary's when the answering server says so (HAProxy adds X-Served-By to errors too)
        nonlocal failures
        if mode == "gate" and "fault" in events and s.status != 200 and s.server == "v2":
            failures += 1
            if failures == p.gate_failures and "gate" not in events:
                events["gate"] = time.perf_counter() - t0
                asyncio.get_running_loop().create_task(rollback())

    async def rollback() -> None:
        events["rolled_back"] = time.perf_counter() - t0  # when the change is sent
        events["rollback_ms"] = await drill.apply(gw.socket, {1: 100, 2: 0})
        done.set()

    async def watch_health() -> None:
        """HAProxy's own view: the moment `show stat` reports canary/v2 DOWN."""
        while not done.is_set():
            rows = await asyncio.to_thread(runtime.show_stat, gw.socket)
            if any(r["pxname"] == CANARY and r["svname"] == "v2" and r["status"].startswith("DOWN") for r in rows):
                events["gate"] = events["rolled_back"] = time.perf_counter() - t0
                events["rollback_ms"] = 0.0
                done.set()
                return
            await asyncio.sleep(0.05)

    stop = asyncio.Event()
    async with load.Client(gw.url("api")) as c:
        await load.closed_loop(c, p.concurrency, p.concurrency * 4, 10)
        t0 = time.perf_counter()
        task = asyncio.create_task(
            load.closed_loop(c, p.concurrency, p.max_requests, 120, stop=stop, on_sample=on_sample, t0=t0)
        )
        for i, w in enumerate(p.canary_steps):
            events[f"step{i}"] = time.perf_counter() - t0
            events[f"step{i}_ms"] = await drill.apply(gw.socket, _weights(w))
            if i < len(p.canary_steps) - 1:
                await asyncio.sleep(p.step_s)
        await asyncio.sleep(p.fault_after_s)
        events["fault"] = time.perf_counter() - t0
        watcher = asyncio.create_task(watch_health()) if mode == "health_check" else None
        await asyncio.to_thread(_unload_v2, gw.triton_url)
        events["fault_done"] = time.perf_counter() - t0
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(done.wait(), timeout=30)
        done.set()
        if watcher is not None:
            await watcher
        await asyncio.sleep(p.recovery_s)
        stop.set()
        return await task, events


Drill = tuple[str, load.Run, dict[str, float], dict[int, int], dict[str, str]]  # mode, run, events, weights, status


def _rollback_output(drills: list[Drill], p: RollbackParams) -> Output:
    rb = Table.of(
        "rollback",
        [
            ("mode", ""),
            ("fault_to_detected", "ms"),
            ("detected_to_out", "ms"),
            ("fault_to_out", "ms"),
            ("reload_took", "ms"),
            ("failed_total", ""),
            ("failed_after_out", ""),
            ("weights_after", "v1:v2"),
            ("v2_state_after", ""),
        ],
        caption="fault: the canary version unloaded from Triton (model reloaded with version_policy specific [1]); "
        f"gate: the clients' failures from server v2 reached {p.gate_failures}, then `set weight` v1 100 / v2 0 "
        "through the runtime API; health_check: HAProxy's check of the version's ready endpoint (inter 1s, fall 2) "
        "marks v2 DOWN itself (seen through `show stat`); out: v2 gets no new request",
    )
    phases = Table.of(
        "phases",
        [
            ("mode", ""),
            ("phase", ""),
            ("starts_at", "s"),
            ("requests", ""),
            ("failed", ""),
            ("failed_on_v2", ""),
            ("v2_share", "%"),
            ("v1_p99", "ms"),
            ("v2_p99", "ms"),
        ],
        caption="requests attributed to the phase in which they were sent; v2_share among successful answers",
    )
    notes = []
    for mode, run, ev, after, status in drills:
        n = len(p.canary_steps)
        bounds = [
            drill.Boundary(f"{w[0]}:{w[1]}", ev[f"step{i}"], ev[f"step{i}_ms"])
            for i, w in enumerate(p.canary_steps[:n])
        ]
        bounds.append(drill.Boundary("fault", ev["fault"], 0.0))
        if "rolled_back" in ev:
            bounds.append(drill.Boundary("v2 out", ev["rolled_back"], ev["rollback_ms"]))
        for b, ss in zip(bounds, drill.split_by_phase(run.samples, bounds), strict=True):
            st = drill.stats(ss)
            phases.add(
                mode,
                b.phase,
                round(b.t_s, 3),
                st.requests,
                st.failed,
                sum(1 for s in ss if s.status != 200 and s.server == "v2"),
                round(st.share("v2"), 2),
                _pct(st.lat.get("v1", []), 99),
                _pct(st.lat.get("v2", []), 99),
            )
        fault = ev["fault"]
        # v2 is out when the runtime API has answered (gate) or HAProxy reports it DOWN (health_check)
        out = ev["rolled_back"] + ev["rollback_ms"] / 1e3 if "rolled_back" in ev else None
        late = [s for s in run.samples if out is not None and s.t_s >= out]
        rb.add(
            mode,
            round(1e3 * (ev["gate"] - fault), 1) if "gate" in ev else None,
            round(1e3 * (out - ev["gate"]), 1) if out is not None else None,
            round(1e3 * (out - fault), 1) if out is not None else None,
            round(1e3 * (ev["fault_done"] - fault), 1),
            sum(1 for s in run.samples if s.status != 200),
            sum(1 for s in late if s.status != 200) if out is not None else None,
            f"{after[1]}:{after[2]}",
            status.get("v2", "?"),
        )
        if out is None:
            notes.append(f"{mode}: v2 was not taken out within 30 s")
        notes.append(f"{mode}: {_host_note(run)}")
    return Output(tables=[rb, phases], notes=notes)


# --- d40.e5: the split as HAProxy's Prometheus series and its Grafana panel --------------------------------------
class MetricsParams(Params):
    weights: list[Pair] = Field(default=[[70, 30], [50, 50]], min_length=1, description="[v1, v2] per phase")
    phase_s: Annotated[Num, Field(ge=2, le=120)] = 6.0
    scrape_s: Annotated[Num, Field(ge=0.2, le=10)] = Field(default=1.0, description="exporter read interval, s")
    prometheus_scrape: Literal["1s", "5s"] = Field(
        default="1s", description="scrape interval of the Prometheus that scrapes HAProxy's exporter (the panel's data)"
    )
    concurrency: Annotated[Int, Field(ge=1, le=256)] = 8
    max_requests: Annotated[Int, Field(ge=100, le=500_000)] = 100_000

    @model_validator(mode="after")
    def _sums(self) -> Self:
        _pair_ok(self.weights, "weights")
        return self


PANEL_QUERY = panel_query(SPLIT_PANEL)  # read from the committed generated dashboard: one source of truth


def _panel_pictures(ctx: Context, prom_url: str, start: float, end: float) -> list:
    """Every panel of dashboards/grafana/gateway.json rendered to PNG from the live Prometheus over [start, end],
    [(shot, path)]. A quick run draws into its own folder, so it never replaces the full run's pictures."""
    import json

    from workloads.telemetry import snapshot

    out = ctx.workdir / ("panels-quick" if ctx.quick else "panels")
    shots = snapshot.snapshot(json.loads(DASHBOARD.read_text()), prom_url, out, start, end)
    return [(sh, out / sh.png) for sh in shots]


def _panel_mean(shot: Any, server: str, start: float, end: float) -> float:
    """Mean of the split panel's `server` line over points whose rate window lies inside [start, end] (wall s)."""
    import re

    m = re.search(r"\[(\d+)s\]", shot.queries[0]) if shot.queries else None
    window = float(m.group(1)) if m else 0.0
    pts = [v for t, v in shot.lines.get(server, []) if start + window <= t <= end]
    return sum(pts) / len(pts) if pts else float("nan")


def split_metrics(ctx: Context, p: MetricsParams) -> Output:
    """HAProxy's exporter read every scrape_s under load (per-server response rates -> split ratio and weights),
    while the platform's Prometheus scrapes the same exporter; the gateway dashboard's panels are rendered from it."""
    from workloads.multimodel.observe import settle
    from workloads.observability.prom import Prom

    phases = [drill.Phase(f"{w[0]}:{w[1]}", _weights(w), p.phase_s) for w in p.weights]
    scrapes: list[tuple[float, dict]] = []
    wall: dict[str, float] = {}
    with gateway(ctx, canary_spec(phases[0].weights), prometheus=p.prometheus_scrape) as gw:
        prom = Prom(gw.prometheus_url)
        prom.wait_for('up{job="haproxy"}', 60, lambda v: v == 1)

        async def go() -> tuple[load.Run, list[drill.Boundary]]:
            t0 = time.perf_counter()
            done = asyncio.Event()

            async def scraper() -> None:
                while not done.is_set():
                    s = await asyncio.to_thread(runtime.scrape, gw.metrics_url)
                    scrapes.append((time.perf_counter() - t0, s))
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(done.wait(), timeout=p.scrape_s)

            async with load.Client(gw.url("api")) as c:
                await load.closed_loop(c, p.concurrency, p.concurrency * 4, 10)
                t0 = time.perf_counter()
                wall["start"] = time.time()
                sc = asyncio.create_task(scraper())
                res = await drill.run_phases(c, gw.socket, phases, p.concurrency, p.max_requests)
                done.set()
                await sc
                return res

        run, bounds = asyncio.run(go())
        scrape_s = float(p.prometheus_scrape.rstrip("s"))
        end = settle(prom, scrape_s)  # the last requests' counters are in Prometheus
        shots = _panel_pictures(ctx, prom.url, wall["start"] - 2 * scrape_s, end)
    split_shot = next((sh for sh, _ in shots if sh.title == SPLIT_PANEL), None)
    # phase boundaries are relative to run_phases' start, which follows t0 by well under a millisecond
    t = Table.of(
        "exporter_split",
        [
            ("phase", ""),
            ("weights", "v1:v2"),
            ("scrapes", ""),
            ("v1_from_exporter", "%"),
            ("v1_from_clients", "%"),
            ("difference", "pp"),
            ("v1_from_panel", "%"),
            ("weight_v1_exported", ""),
            ("weight_v2_exported", ""),
        ],
        caption="exporter: deltas of haproxy_server_http_responses_total{proxy=canary,code=2xx} between the first and "
        "last scrape inside the phase (what rate() over the phase gives); panel: mean of the split panel's v1 line "
        "(dashboards/grafana/gateway.json on the platform's Prometheus) over the points whose rate window lies inside "
        "the phase; weights: haproxy_server_weight at the phase's end",
    )
    series = Series("v1_share", x=_col("time", "s"), y=_col("v1 share of 2xx responses", "%"))
    by_phase = drill.split_by_phase(run.samples, bounds)
    ends = [b.t_s for b in bounds[1:]] + [float("inf")]
    for b, ph, end_s, ss in zip(bounds, phases, ends, by_phase, strict=True):
        inside = [(ts, s) for ts, s in scrapes if b.t_s + 0.2 <= ts < end_s]
        st = drill.stats(ss)
        w = [ph.weights[1], ph.weights[2]]
        if len(inside) >= 2:
            first, last = _responses(inside[0][1]), _responses(inside[-1][1])
            d = {k: last.get(k, 0.0) - first.get(k, 0.0) for k in ("v1", "v2")}
            hx = 100.0 * d["v1"] / max(1.0, d["v1"] + d["v2"])
            wts = runtime.server_values(inside[-1][1], "haproxy_server_weight", CANARY)
        else:
            hx, wts = float("nan"), {}
        last_t = inside[-1][0] if inside else b.t_s + p.phase_s
        panel = (
            _panel_mean(split_shot, "v1", wall["start"] + b.t_s, wall["start"] + min(end_s, last_t + p.scrape_s))
            if split_shot
            else float("nan")
        )
        t.add(
            b.phase,
            f"{w[0]}:{w[1]}",
            len(inside),
            round(hx, 2),
            round(st.share("v1"), 2),
            round(hx - st.share("v1"), 2),
            round(panel, 2),
            wts.get("v1"),
            wts.get("v2"),
        )
    for (_ta, a), (tb, b2) in itertools.pairwise(scrapes):
        ra, rb = _responses(a), _responses(b2)
        d1, d2 = rb.get("v1", 0) - ra.get("v1", 0), rb.get("v2", 0) - ra.get("v2", 0)
        if d1 + d2 > 0:
            series.point("exporter", round(tb, 2), round(100.0 * d1 / (d1 + d2), 2))
    pics = Table.of(
        "panel_pictures",
        [("panel", ""), ("series", ""), ("points", ""), ("unit", ""), ("query error", "")],
        caption="the gateway dashboard's panels drawn as Grafana would show them: each panel's own queries run with "
        "query_range on the platform's Prometheus (scraping HAProxy's exporter every "
        f"{p.prometheus_scrape}) over the load window by workloads/telemetry/snapshot.py; the pictures are this "
        "result's artifacts",
    )
    for sh, _ in shots:
        pics.add(sh.title, len(sh.lines), sh.points, sh.unit, sh.error or "none")
    empty = [sh.title for sh, _ in shots if not sh.lines or sh.error]
    short = [r[0] for r in t.rows if r[6] != r[6]]  # NaN: no panel point with its whole rate window in the phase
    return Output(
        tables=[t, pics],
        series=[series],
        notes=[
            _host_note(run),
            f"Panel pictures without data: {empty}." if empty else "Every panel of the gateway dashboard got data.",
            *(
                [f"v1_from_panel is empty for {short}: the phase is shorter than the panel's rate window"]
                if short
                else []
            ),
            f"split panel query (PromQL, from {DASHBOARD.relative_to(DASHBOARD.parents[2])}, panel "
            f"'{SPLIT_PANEL}'): {PANEL_QUERY}",
        ],
        artifacts={f"Grafana panel: {sh.title}": str(path) for sh, path in shots},
        substitute=Substitute(
            instead_of="a Grafana panel",
            used="the generated Grafana dashboard's panel queries (dashboards/grafana/gateway.json) run on a live "
            "Prometheus scraping HAProxy's exporter and drawn to PNG (workloads/telemetry/snapshot.py)",
            why="no Grafana server can be installed here (no apt, PyPI or npm package); the panel JSON is what "
            "Grafana would load",
        ),
    )
