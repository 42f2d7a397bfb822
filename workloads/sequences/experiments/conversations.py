"""A GRU behind Triton's sequence batcher (direct and oldest strategies, START/END/READY/CORRID controls): deployed
and checked step by step against onnxruntime (d39.e1), 10 concurrent conversations (d39.e2), against the same network
stateless behind the dynamic batcher (d39.e3), and performance against conversation length (d39.e5).

The conversations are driven by workloads/sequences/driver.py: the lab's load generator sends one fixed request
with no sequence id, so it cannot hold a conversation; the driver keeps every latency (exact nearest-rank
percentiles, workloads/serving/stats.py) and checks every output against the reference.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field

from ailab.contract import Column, Context, Output, Params, Series, Table
from workloads.serving.experiments import Int, Num, Seconds

Strategy = Literal["direct", "oldest"]
Strategies = Annotated[list[Strategy], Field(min_length=1)]
Length = Annotated[Int, Field(ge=1, le=4096, description="steps (requests) per conversation")]

BACKEND_NOTE = (
    "Model: one GRU step (8 inputs, 32 hidden, 4 outputs, random weights, seed 0) exported from torch to ONNX and run "
    "by onnxruntime inside a python-backend model: tritonserver 2.51 from nvidia-pytriton ships the python backend "
    "only (no onnxruntime backend). The hidden state of each sequence is kept by the model keyed by CORRID (zeros on "
    "START, dropped on END), not by Triton's implicit state (`sequence_batching.state`): 2.51's python backend hands "
    "the model the state input but does not keep the state output it returns "
    "(tests/integration/sequences/test_sequences_implicit_state_live.py)."
)


class ConversationParams(Params):
    strategies: Strategies = Field(default=["direct", "oldest"], description="sequence batcher strategies to run")
    concurrency: Annotated[Int, Field(ge=1, le=256)] = Field(default=10, description="conversations at once")
    length: Length = 16
    lengths: Annotated[list[Length], Field(min_length=1)] = Field(
        default=[16], description="conversation lengths swept (d39.e5); `length` is used elsewhere"
    )
    dynamic: bool = Field(default=False, description="also run the stateless model behind the dynamic batcher")
    duration_s: Seconds = 3.0
    max_batch_size: Annotated[Int, Field(ge=1, le=256)] = 16
    max_queue_delay_us: Annotated[Int, Field(ge=0, le=1_000_000)] = 0
    max_sequence_idle_us: Annotated[Int, Field(ge=1, le=60_000_000)] = 5_000_000
    warmup_s: Annotated[Num, Field(ge=0, le=60)] = 0.5
    perf_analyzer: bool = Field(default=False, description="also measure with perf_analyzer (concurrent only)")
    pa_request_count: Annotated[Int, Field(ge=10, le=100_000)] = Field(
        default=300, description="perf_analyzer --measurement-request-count per window"
    )
    pa_stability_percentage: Annotated[Int, Field(ge=1, le=1000)] | None = Field(
        default=None,
        description="perf_analyzer --stability-percentage (default: the lab's 50); quick runs take the first three "
        "windows as they come (1000) instead of waiting, and retrying, for three that agree",
    )


def _models(p: ConversationParams):  # -> list[SeqModel]
    from workloads.sequences.config import SequenceBatching
    from workloads.sequences.repository import stateful, stateless

    ms = [
        stateful(
            f"gru_{s}",
            SequenceBatching(s, max_sequence_idle_us=p.max_sequence_idle_us, max_queue_delay_us=p.max_queue_delay_us),
            max_batch_size=p.max_batch_size,
        )
        for s in p.strategies
    ]
    if p.dynamic:
        ms.append(stateless("gru_dynamic", max_batch_size=p.max_batch_size, max_queue_delay_us=p.max_queue_delay_us))
    return ms


def _measure(srv, model: str, mode: str, p: ConversationParams, length: int, pool):  # -> (ConvResult, counters)
    import asyncio

    from workloads.sequences import driver
    from workloads.serving import metrics

    c0 = metrics.read(srv.metrics_url, model)
    r = asyncio.run(driver.run(srv.address("grpc"), model, mode, p.concurrency, length, pool, p.duration_s, p.warmup_s))
    return r, metrics.read(srv.metrics_url, model) - c0


def _load_table(name: str, caption: str) -> Table:
    return Table.of(
        name,
        [
            ("model", ""),
            ("scheduler", ""),
            ("conversation length", "steps"),
            ("concurrency", "conversations"),
            ("steps", ""),
            ("throughput", "steps/s"),
            ("p50", "ms"),
            ("p95", "ms"),
            ("p99", "ms"),
            ("conversation p50", "ms"),
            ("conversation p99", "ms"),
            ("avg batch (server)", "requests"),
            ("output mismatches", ""),
            ("errors", ""),
            ("host CPU busy", "%"),
        ],
        caption=caption,
    )


def _row(t: Table, r, d, scheduler: str) -> None:
    t.add(
        r.model,
        scheduler,
        r.length,
        r.concurrency,
        r.steps_ok,
        round(r.steps_per_s, 1),
        round(r.pct(50), 3),
        round(r.pct(95), 3),
        round(r.pct(99), 3),
        round(r.pct(50, "conversation"), 2),
        round(r.pct(99, "conversation"), 2),
        round(d.avg_batch, 2),
        r.mismatches,
        ", ".join(f"{k} {v}" for k, v in sorted(r.errors.items())) or "none",
        round(100 * r.host_cpu_busy, 1),
    )


CAPTION = (
    "gRPC, closed loop: each conversation sends its steps one after another (START on the first, END on the last); "
    "throughput and step percentiles over the measured window (exact, nearest rank); avg batch = Triton's "
    "nv_inference_count / nv_inference_exec_count over the run; mismatches = steps whose Y (and STEP) differ from "
    "onnxruntime run on the same conversation in the client"
)


def deploy(ctx: Context, p: ConversationParams) -> Output:
    """Deploy the GRU with sequence_batching (each strategy); the server's config read back; one conversation per
    model compared step by step with the reference."""
    import numpy as np

    from workloads.sequences import gru
    from workloads.sequences.repository import serve
    from workloads.serving.client import Client
    from workloads.serving.common import host_note
    from workloads.serving.repository import model_cache

    at_start = host_note()
    models = _models(p)
    ref = gru.Reference(gru.export(model_cache()))
    xs = gru.conversation(7, p.length)
    want = ref.run(xs)
    t = Table.of(
        "deployed",
        [
            ("model", ""),
            ("strategy (server config)", ""),
            ("control inputs (server config)", ""),
            ("max_sequence_idle", "µs"),
            ("max_batch_size", ""),
            ("steps", ""),
            ("STEP outputs as 1..n", ""),
            ("max abs(Y - reference)", ""),
        ],
        caption="config as GET v2/models/<m>/config returns it; one conversation (correlation id 42, START on the "
        "first step, END on the last) checked against onnxruntime on the same inputs",
    )
    with serve(ctx, models) as srv, Client(srv.address("grpc"), "grpc", timeout_s=30) as c:
        import tritonclient.grpc as grpcclient

        for m in models:
            name = m.spec.name
            cfg = c.c.get_model_config(name, as_json=True)["config"]
            sb = cfg.get("sequence_batching", {})
            strategy = "direct" if "direct" in sb else "oldest" if "oldest" in sb else "-"
            kinds = [
                (ci["name"], ci["control"][0].get("kind", "CONTROL_SEQUENCE_START"))
                for ci in sb.get("control_input", [])
            ]
            controls = ", ".join(f"{n}:{k.removeprefix('CONTROL_SEQUENCE_')}" for n, k in kinds)
            steps, ys = [], []
            for s in range(p.length):
                i = grpcclient.InferInput("X", [1, gru.FEATURES], "FP32")
                i.set_data_from_numpy(xs[s : s + 1])
                r = c.c.infer(name, [i], sequence_id=42, sequence_start=s == 0, sequence_end=s == p.length - 1)
                steps.append(int(r.as_numpy("STEP").reshape(-1)[0]))
                ys.append(r.as_numpy("Y")[0])
            err = float(np.max(np.abs(np.stack(ys) - want)))
            t.add(
                name,
                strategy,
                controls,
                int(sb.get("max_sequence_idle_microseconds", 0)),
                int(cfg.get("max_batch_size", 0)),
                p.length,
                "yes" if steps == list(range(1, p.length + 1)) else f"no: {steps}",
                f"{err:.2e}",
            )
        config_text = (srv.repo / models[0].spec.name / "config.pbtxt").read_text()
    notes = [at_start, BACKEND_NOTE, "Generated config.pbtxt of the first model:\n\n```\n" + config_text + "```"]
    return Output(tables=[t], notes=notes)


def concurrent(ctx: Context, p: ConversationParams) -> Output:
    """`concurrency` conversations at once on each strategy (and, with `dynamic`, the stateless model behind the
    dynamic batcher): throughput, step and conversation percentiles, server batch size, output check; with
    `perf_analyzer`, the same models and concurrency measured by perf_analyzer too."""
    from workloads.sequences import driver, gru
    from workloads.sequences.repository import serve
    from workloads.serving.common import host_note
    from workloads.serving.repository import model_cache

    at_start = host_note()
    models = _models(p)
    pool = driver.Pool(p.length, gru.Reference(gru.export(model_cache())))
    t = _load_table("conversations", CAPTION)
    results: dict[str, tuple[float, float]] = {}  # model -> (throughput steps/s, p99 ms), lab driver
    pa_results: dict[str, tuple[float, float]] = {}
    pa_t = Table.of(
        "perf_analyzer",
        [
            ("model", ""),
            ("scheduler", ""),
            ("concurrency", ""),
            ("throughput", "infer/s"),
            ("p50", "ms"),
            ("p95", "ms"),
            ("p99", "ms"),
            ("server queue", "ms"),
            ("server compute", "ms"),
            ("avg batch (server)", "requests"),
            ("perf_analyzer CPU", "cores"),
            ("error", ""),
        ],
        caption=f"perf_analyzer (tritonclient 2.51), gRPC, concurrency {p.concurrency}; sequence models with "
        f"--sequence-length {p.length} --sequence-length-variation 0 (it assigns the correlation ids and START/END "
        f"flags itself, random inputs), count_windows of {p.pa_request_count}",
    )
    with serve(ctx, models) as srv:
        for m in models:
            mode = "stateful" if m.sequence else "stateless"
            r, d = _measure(srv, m.spec.name, mode, p, p.length, pool)
            sched = f"sequence ({m.sequence.strategy})" if m.sequence else "dynamic (client carries state)"
            _row(t, r, d, sched)
            results[m.spec.name] = (r.steps_per_s, r.pct(99))
        if p.perf_analyzer:
            for m in models:
                sched = f"sequence ({m.sequence.strategy})" if m.sequence else "dynamic (client carries state)"
                try:
                    r, d, pa_cpu = _perf_analyzer(ctx, srv, m, p)
                except Exception as exc:  # noqa: BLE001 - an unstable measurement is recorded, the others still run
                    reason = str(exc).splitlines()[-1][:160]
                    pa_t.add(m.spec.name, sched, p.concurrency, *(["-"] * 8), f"no result: {reason}")
                    continue
                pa_t.add(
                    m.spec.name,
                    sched,
                    p.concurrency,
                    round(r.throughput_ips, 1),
                    round(r.p50_ms, 3),
                    round(r.p95_ms, 3),
                    round(r.p99_ms, 3),
                    round(r.server_queue_ms, 3),
                    round(r.server_compute_ms, 3),
                    round(d.avg_batch, 2),
                    round(pa_cpu, 2),
                    "-",
                )
                pa_results[m.spec.name] = (r.throughput_ips, r.p99_ms)
    notes = [at_start, BACKEND_NOTE]
    tables = [t, pa_t] if p.perf_analyzer else [t]
    if "gru_dynamic" in results:
        ratio = Table.of(
            "sequence_vs_dynamic",
            [
                ("driver", ""),
                ("sequence model", ""),
                ("throughput / dynamic throughput", "x"),
                ("p99 / dynamic p99", "x"),
            ],
            caption="ratios from this one run (same models, concurrency and server; each driver against its own "
            "measurement of the dynamic model)",
        )
        for driver_name, res in (("lab conversations driver", results), ("perf_analyzer", pa_results)):
            if "gru_dynamic" not in res:
                continue
            dyn_thr, dyn_p99 = res["gru_dynamic"]
            for name, (thr, p99) in res.items():
                if name != "gru_dynamic" and dyn_thr:
                    ratio.add(driver_name, name, round(thr / dyn_thr, 3), round(p99 / dyn_p99, 3))
        tables.append(ratio)
        notes.append(
            "The stateless model sends the 32-float hidden state both ways with every step (X 32 B + H 128 B in, "
            "Y 16 B + H 128 B out) and needs no sticky routing; the stateful one sends X only but ties each sequence "
            "to one model instance (the batcher routes every request of a sequence to the same instance), and the "
            "batcher adds the four control tensors to every request."
        )
        notes.append(
            "The two drivers differ in their own cost: the Python conversations driver checks every output against the "
            "reference and is itself CPU-bound on this 2-core host (host CPU busy is in its table); perf_analyzer "
            "(C++) sends random inputs and leaves more CPU to the server."
        )
    return Output(tables=tables, notes=notes)


def _perf_analyzer(ctx: Context, srv, m, p: ConversationParams):  # -> (PerfResult, ModelCounters delta, CPU cores)
    import resource
    import time

    from workloads.serving import metrics, perf

    extra = ("--sequence-length", str(p.length), "--sequence-length-variation", "0") if m.sequence else ()
    if p.pa_stability_percentage is not None:  # given after the lab's defaults: perf_analyzer keeps the last value
        extra = (*extra, "--stability-percentage", str(p.pa_stability_percentage))

    def children_cpu() -> float:
        r = resource.getrusage(resource.RUSAGE_CHILDREN)
        return r.ru_utime + r.ru_stime

    c0, t0, m0 = children_cpu(), time.perf_counter(), metrics.read(srv.metrics_url, m.spec.name)
    r = perf.run(
        srv.address("grpc"),
        m.spec.name,
        "grpc",
        p.concurrency,
        1,
        p.pa_request_count,
        extra=extra,
        workdir=ctx.workdir / "perf_analyzer",
    )
    d = metrics.read(srv.metrics_url, m.spec.name) - m0
    return r, d, (children_cpu() - c0) / (time.perf_counter() - t0)


def length_curve(ctx: Context, p: ConversationParams) -> Output:
    """Conversation length swept on each strategy at fixed concurrency: step throughput and latency,
    whole-conversation latency."""
    from workloads.sequences import driver, gru
    from workloads.sequences.repository import serve
    from workloads.serving.common import host_note
    from workloads.serving.repository import model_cache

    at_start = host_note()
    models = _models(p)
    ref = gru.Reference(gru.export(model_cache()))
    t = _load_table("length_curve", CAPTION)
    thr = Series(
        "throughput_vs_length", x=Column("conversation length", "steps"), y=Column("throughput", "steps/s"), log_x=True
    )
    p99 = Series("p99_vs_length", x=Column("conversation length", "steps"), y=Column("step p99", "ms"), log_x=True)
    conv = Series(
        "conversation_p50_vs_length",
        x=Column("conversation length", "steps"),
        y=Column("conversation p50", "ms"),
        log_x=True,
        log_y=True,
    )
    with serve(ctx, models) as srv:
        for length in p.lengths:
            pool = driver.Pool(length, ref)
            for m in models:
                mode = "stateful" if m.sequence else "stateless"
                r, d = _measure(srv, m.spec.name, mode, p, length, pool)
                sched = f"sequence ({m.sequence.strategy})" if m.sequence else "dynamic (client carries state)"
                _row(t, r, d, sched)
                for s, v in ((thr, r.steps_per_s), (p99, r.pct(99)), (conv, r.pct(50, "conversation"))):
                    s.lines.setdefault(m.spec.name, []).append([length, round(v, 3)])
    notes = [
        at_start,
        BACKEND_NOTE,
        "A conversation longer than the window does not finish inside it: its conversation percentiles are NaN.",
    ]
    return Output(tables=[t], series=[thr, p99, conv], notes=notes)
