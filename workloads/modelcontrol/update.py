"""Hot updates under load (d25.e3-e5, d34.e2, d34.e3): model `clf` with versions 1 (the Day-3 MLP) and 2 (the same
network with perturbed weights) on disk; load runs the whole time while the serving version is switched
`start` -> switches[0] -> switches[1] ...

Two mechanisms, chosen by `mode`:
- explicit: POST v2/repository/models/clf/load with a config override whose version_policy is `specific [v]`;
- poll: the model's config.pbtxt is replaced (staged, renamed in) with that policy; tritonserver started with
  --model-control-mode=poll --repository-poll-secs=N notices it on its next poll and reloads the model.

Recorded: every request (send time, latency, error) by the lab's load generator; each switch's call and the time
until exactly the new version is READY; Triton's metrics (per-version inference counts, failures) scraped every
`scrape_s`; Triton's log lines about loading and unloading, placed on the same clock.
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from google.protobuf import text_format

from ailab.contract import Column, Output, Series, Table
from workloads.modelcontrol import control
from workloads.serving import harness
from workloads.serving.common import host_note
from workloads.serving.experiments import server_args
from workloads.serving.modelspec import VersionPolicy, to_config
from workloads.serving.repository import HEADER, mlp_spec

MODEL = "clf"


@dataclass
class Scrape:
    t: float  # perf_counter
    by_version: dict[int, float]  # nv_inference_request_success per version
    failures: float
    pending: float  # nv_inference_pending_request_count, all versions (a gauge)


@dataclass
class Scraper:
    """Reads Triton's metrics page every interval_s in a thread (as a Prometheus scrape would)."""

    url: str
    interval_s: float
    samples: list[Scrape] = field(default_factory=list)
    stop: threading.Event = field(default_factory=threading.Event)

    def read(self) -> None:
        from prometheus_client.parser import text_string_to_metric_families

        from workloads.serving import metrics

        by: dict[int, float] = {}
        fail = pending = 0.0
        t = time.perf_counter()
        for fam in text_string_to_metric_families(metrics.scrape(self.url)):
            for s in fam.samples:
                if s.labels.get("model") != MODEL:
                    continue
                name = s.name.removesuffix("_total")  # the parser adds _total to counters
                if name == "nv_inference_request_success":
                    v = int(s.labels.get("version", "0") or 0)
                    by[v] = by.get(v, 0.0) + s.value
                elif name == "nv_inference_request_failure":
                    fail += s.value
                elif name == "nv_inference_pending_request_count":
                    pending += s.value
        self.samples.append(Scrape(t, by, fail, pending))

    def run(self) -> None:
        while not self.stop.is_set():
            with contextlib.suppress(Exception):  # a scrape during a reload may fail: the next one counts
                self.read()
            self.stop.wait(self.interval_s)


def write_config(model_dir: Path, spec: Any, staging: Path) -> None:
    """Replace config.pbtxt atomically (written beside the repository, renamed in)."""
    tmp = staging / f"config-{time.monotonic_ns()}.pbtxt"
    tmp.write_text(HEADER + text_format.MessageToString(to_config(spec)))
    os.replace(tmp, model_dir / "config.pbtxt")


def run(ctx: Any, p: Any) -> Output:
    """The drill (p: HotUpdateParams); see the module docstring."""
    at_start = host_note()
    base = mlp_spec(MODEL, versions=(1, 2), version_policy=VersionPolicy("specific", versions=(p.start,)))
    plan = control.check_plan(base, [VersionPolicy("specific", versions=(v,)) for v in p.switches])
    staging = ctx.workdir / "staging"
    staging.mkdir(parents=True, exist_ok=True)
    args = server_args(p.auto_complete_config, [f"--repository-poll-secs={p.poll_secs}"] if p.mode == "poll" else [])
    with harness.serve(ctx, [base], control_mode=p.mode, load_models=[], args=args, warm_requests=0) as srv:
        addr = srv.address("grpc")
        mdir = srv.repo / MODEL
        log = Path(srv.platform.record("triton").log)
        before = control.log_offset(log)
        control.perturb(mdir / "1" / "model.onnx", staging / "v2.onnx", seed=2)
        os.replace(staging / "v2.onnx", mdir / "2" / "model.onnx")  # not loaded: the policy serves `start` only
        if p.mode == "poll":  # a poll sees the model directory changed and reloads it: let that finish first
            # 2.51 logs that reload of the served version as loading + loaded, no unload line: waiting for "unloaded"
            # ran into the timeout every time (14 s idle at poll_secs 1)
            control.wait_until(
                lambda: any(e[1] in ("loaded", "unloaded") for e in control.log_events(log, before, MODEL)),
                4 * p.poll_secs + 10,
                interval_s=0.1,
            )
        if p.mode == "explicit":
            from workloads.serving.client import Client

            with Client(addr, "grpc", timeout_s=120) as c:
                c.c.load_model(MODEL, config=control.config_json(base))
        if control.wait_until(lambda: control.ready(addr, MODEL) == (p.start,), 120) is None:
            raise RuntimeError(f"{MODEL} v{p.start} did not become READY")
        harness.warm(srv, [MODEL], 20)
        offset = control.log_offset(log)
        scraper = Scraper(srv.metrics_url, p.scrape_s)
        th = threading.Thread(target=scraper.run, daemon=True)
        th.start()
        duration = p.phase_s * (len(p.switches) + 1) + p.switch_budget_s * len(p.switches)
        load = {"mode": "open", "qps": p.qps} if p.load == "open" else {"mode": "closed", "concurrency": p.concurrency}
        settles: list[tuple[float, float | None, tuple[int, ...], int | None]] = []
        wall0, perf0 = time.time(), time.perf_counter()
        with control.background_load(srv, MODEL, duration_s=duration, warmup_s=p.load_warmup_s, **load) as bg:
            for v, spec in zip(p.switches, plan, strict=True):
                time.sleep(p.phase_s)
                if p.mode == "explicit":
                    from workloads.serving.client import Client

                    def call(spec: Any = spec) -> None:
                        with Client(addr, "grpc", timeout_s=120) as c:
                            c.c.load_model(MODEL, config=control.config_json(spec))

                    ev = bg.mark(f"to v{v}", call)
                else:
                    ev = bg.mark(f"to v{v}", lambda spec=spec: write_config(mdir, spec, staging))
                settle = control.wait_until(
                    lambda v=v: (
                        control.ready(addr, MODEL) == (v,)
                        and "UNLOADING" not in control.version_states(addr, MODEL).values()
                    ),
                    p.switch_budget_s,
                )
                if settle is not None:  # measured from the switch's start, the call included
                    settle += ev.end - ev.start
                served = _served_version(addr)
                settles.append((ev.start, settle, control.ready(addr, MODEL), served))
            # the new version's steady phase, then the load ends: a switch that settled early leaves no idle rest of
            # its budget (the load's duration above is the most all of them may take)
            time.sleep(p.phase_s)
            bg.stop()
        scraper.stop.set()
        th.join()
        events = control.log_events(log, offset, MODEL)
    return report(p, bg, settles, scraper, events, wall0, perf0, at_start)


def _served_version(addr: str) -> int | None:
    """Which version answers a request that names none (the response's model_version)."""
    import tritonclient.grpc as grpcclient

    from workloads.serving import loadgen

    c = grpcclient.InferenceServerClient(addr)
    try:
        x = loadgen.default_inputs(1)["input"]
        i = grpcclient.InferInput("input", list(x.shape), "FP32")
        i.set_data_from_numpy(x)
        return int(c.infer(MODEL, [i]).get_response().model_version)
    except Exception:  # noqa: BLE001 - no version serving is an outcome
        return None
    finally:
        c.close()


def report(
    p: Any, bg: Any, settles: list, scraper: Scraper, events: list, wall0: float, perf0: float, at_start: str
) -> Output:
    """The drill's tables, series and notes."""
    res = bg.result
    tl = res.timeline
    rel = lambda t: t - res.window_start  # noqa: E731 - perf_counter -> timeline clock
    switches = Table.of(
        "switches",
        [
            ("switch", ""),
            ("mechanism", ""),
            ("at", "s"),
            ("call", "s"),
            ("until only it READY", "s"),
            ("requests during", ""),
            ("failed during", ""),
            ("p99 during", "ms"),
            ("max during", "ms"),
            ("READY after", ""),
            ("served after", "version"),
            ("log: loading / unloaded", "lines"),
            ("error", ""),
        ],
        caption="'during' = requests sent from the switch's start until exactly the new version was READY (and nothing "
        "UNLOADING); explicit = repository-API load with a config override, poll = config.pbtxt replaced and "
        f"picked up by --repository-poll-secs={p.poll_secs}",
    )
    mech = "explicit load + override" if p.mode == "explicit" else f"poll ({p.poll_secs} s)"
    phase_edges = []
    midnight = time.mktime((*time.localtime(wall0)[:3], 0, 0, 0, 0, 0, -1))
    log_at = [
        (rel(perf0 + (midnight + control.seconds_of_day(hms) - wall0)) if hms else float("nan"), name, v)
        for hms, name, v in events
    ]
    starts = [rel(st) for st, *_ in settles] + [float("inf")]
    for k, (ev, (start, settle, ready_after, served)) in enumerate(zip(bg.events, settles, strict=True)):
        in_switch = [name for t, name, _ in log_at if starts[k] <= t < starts[k + 1]]
        t0 = rel(start)
        t1 = t0 + (settle if settle is not None else p.switch_budget_s)
        w = control.window(tl, t0, t1)
        phase_edges.append((t0, t1))
        switches.add(
            ev.name,
            mech,
            round(t0, 3),
            round(ev.end - ev.start, 3),
            round(settle, 3) if settle is not None else f"> {p.switch_budget_s}",
            w.requests,
            w.failed,
            round(w.pct(99), 3),
            round(w.max, 3),
            str(list(ready_after)),
            served if served is not None else "none",
            f"{in_switch.count('loading')} / {in_switch.count('unloaded')}",
            ev.error or "-",
        )
    load_desc = f"qps {p.qps:g}" if p.load == "open" else f"concurrency {p.concurrency}"
    phases = Table.of(
        "phases",
        [
            ("phase", ""),
            ("from", "s"),
            ("to", "s"),
            ("requests", ""),
            ("failed", ""),
            ("throughput", "req/s"),
            ("p50", "ms"),
            ("p99", "ms"),
            ("max", "ms"),
        ],
        caption=f"load: {p.load} loop ({load_desc}), gRPC, the lab's load generator; percentiles exact (nearest rank) "
        "over the phase's requests",
    )
    versions = [p.start, *p.switches]
    cuts = [0.0]
    for t0, t1 in phase_edges:
        cuts += [t0, t1]
    cuts.append(res.window_s)
    for i in range(0, len(cuts), 2):
        a, b = cuts[i], cuts[i + 1]
        for name, lo, hi in ((f"steady v{versions[i // 2]}", a, b),) + (
            ((f"switch to v{versions[i // 2 + 1]}", b, cuts[i + 2]),) if i + 2 < len(cuts) else ()
        ):
            w = control.window(tl, lo, hi)
            span = max(hi - lo, 1e-9)
            phases.add(
                name,
                round(lo, 3),
                round(hi, 3),
                w.requests,
                w.failed,
                round(len(w.lat) / span, 1),
                round(w.pct(50), 3),
                round(w.pct(99), 3),
                round(w.max, 3),
            )
    width = p.bucket_s
    lat = Series("latency_over_time", x=Column("time", "s"), y=Column("latency", "ms"), log_y=True)
    reqs = Series("requests_over_time", x=Column("time", "s"), y=Column("requests", "per bucket"))
    top = 0
    for t, w in control.buckets(tl, width, res.window_s):
        lat.lines.setdefault(f"p99 per {width:g} s", []).append([round(t, 3), round(w.pct(99), 3)])
        lat.lines.setdefault(f"p50 per {width:g} s", []).append([round(t, 3), round(w.pct(50), 3)])
        reqs.lines.setdefault(f"succeeded per {width:g} s", []).append([round(t, 3), len(w.lat)])
        reqs.lines.setdefault(f"failed per {width:g} s", []).append([round(t, 3), w.failed])
        top = max(top, len(w.lat))
    for i, (t0, t1) in enumerate(phase_edges):  # each switch as a box: from its start until settled
        a, b = round(t0, 3), round(t1, 3)
        reqs.lines[f"switch {i + 1} (start to settled)"] = [[a, 0], [a, top], [b, top], [b, 0]]
    metrics_t = Table.of(
        "metrics",
        [
            ("from", "s"),
            ("to", "s"),
            ("version", ""),
            ("successes/s", "req/s"),
            ("failures/s (all versions)", "req/s"),
            ("pending at 'to'", "requests"),
        ],
        caption=f"Triton's /metrics scraped every {p.scrape_s:g} s: rate of nv_inference_request_success per version "
        "and of nv_inference_request_failure between consecutive scrapes (a reloaded version's counter restarts at "
        "0: negative differences are shown as the new count)",
    )
    rate = Series("metrics_rate", x=Column("time", "s"), y=Column("successes per version", "req/s"))
    for a, b in zip(scraper.samples, scraper.samples[1:], strict=False):
        dt = b.t - a.t
        for v in sorted(set(a.by_version) | set(b.by_version)):
            d = b.by_version.get(v, 0.0) - a.by_version.get(v, 0.0)
            d = b.by_version.get(v, 0.0) if d < 0 else d
            fr = max(b.failures - a.failures, 0.0)
            metrics_t.add(
                round(rel(a.t), 2), round(rel(b.t), 2), v, round(d / dt, 1), round(fr / dt, 1), int(b.pending)
            )
            rate.lines.setdefault(f"v{v}", []).append([round(rel(b.t), 3), round(d / dt, 1)])
    log_t = Table.of(
        "log",
        [("at", "s"), ("event", ""), ("version", "")],
        caption="tritonserver's log lines for the model after the load started ('loaded' lines in 2.51 name no "
        "version: 0), placed on the timeline's clock through the wall-clock/perf_counter pair taken at the start",
    )
    for t, name, v in log_at:
        log_t.add(round(t, 3), name, v)
    total_failed = sum(1 for _, _, e in tl if e)
    notes = [
        at_start,
        f"Host CPU busy during the load window: {100 * res.host_cpu_busy:.0f} % of all cores (load generator "
        f"{res.generator_cpu:.2f} cores).",
        f"Whole run: {len(tl)} requests, {total_failed} failed "
        f"({', '.join(f'{k} {n}' for k, n in sorted(res.errors.items())) or 'no errors'}); "
        f"error example: {next(iter(res.error_examples.values()), '-')[:200]}",
        "Each version's first requests after a load are slow (d07.e2 measures that); the drill does not warm a "
        "version before it takes traffic, so the switch windows include them.",
    ]
    return Output(tables=[switches, phases, metrics_t, log_t], series=[lat, reqs, rate], notes=notes)
