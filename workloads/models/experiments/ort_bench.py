"""ONNX Runtime latency of the Day-3 digits MLP (d03.e1–e3): opset × optimisation level, dynamic batch, and
optimisations off vs on in fresh processes (latency, start-up, peak RSS).

Timing: warm-up calls first, then every call timed with perf_counter_ns; percentiles are over all calls.
Settings that are compared are timed round-robin in slices so drift on a shared machine hits all alike.
torch and onnxruntime are imported inside the runners (through the area's library modules).
"""

from __future__ import annotations

import statistics
from pathlib import Path

from pydantic import Field

from ailab.contract import Column, Context, Output, Params, Series, Table
from ailab.contract.paths import work_dir
from workloads.models.experiments.common import Count, Level, Opset, OrtTiming


class OpsetLevelsParams(OrtTiming):
    opsets: list[Opset] = Field(min_length=1, description="ONNX opsets exported and compared")
    levels: list[Level] = Field(min_length=1, description="ORT optimisation levels; the first is the baseline")
    batch: Count = Field(description="samples per session.run call")


class DynamicBatchParams(OrtTiming):
    opset: Opset = 17
    level: Level = "all"
    batches: list[Count] = Field(min_length=1, description="batch sizes fed to the one dynamic-batch session")


class OptOffOnParams(Params):
    opset: Opset = 17
    levels: list[Level] = Field(min_length=1)
    batches: list[Count] = Field(min_length=1)
    repeats: Count = Field(description="fresh processes per (level, batch)")
    warmup: Count
    iters: Count
    intra_op_num_threads: Count = 1


def cached_model(opset: int) -> Path:
    """The cached Day-3 model for this opset, shared by all d03 experiments (trained once, ~1 s)."""
    from workloads.models import mlp

    return mlp.export_default_model(work_dir() / "models" / f"mlp-opset{opset}", opset=opset)


def _thread_note(p: OrtTiming) -> str:
    return (
        f"ORT CPU EP, intra_op_num_threads={p.intra_op_num_threads}, inter_op_num_threads={p.inter_op_num_threads}, "
        f"sequential execution; warm-up {p.warmup} calls, then {p.iters} timed calls per setting "
        f"in {p.rounds} interleaved round(s); latency is one session.run() call."
    )


def _ort_accuracy(model: Path) -> float:
    """Held-out accuracy (fraction) of the ONNX model run by ORT on the whole test split."""
    from workloads.models import mlp, ortbench

    split = mlp.digits_split()
    sess = ortbench.session(model, "all")
    logits = sess.run(None, {mlp.INPUT_NAME: split.x_test})[0]
    return float((logits.argmax(axis=1) == split.y_test).mean())


def _opset_note(models: dict[int, Path]) -> str:
    """Whether the exports of different opsets contain the same ops (measured, not assumed)."""
    from workloads.models import ortbench

    counts = {op: ortbench.fmt_ops(ortbench.op_counts(p)) for op, p in models.items()}
    if len(set(counts.values())) == 1:
        return (
            f"The opset {' and '.join(map(str, counts))} exports contain the same ops ({next(iter(counts.values()))}): "
            "the opset only changes which operator versions the graph declares."
        )
    return "The exports differ by opset: " + "; ".join(f"opset {op}: {c}" for op, c in counts.items())


def opset_opt_levels(ctx: Context, p: OpsetLevelsParams) -> Output:
    """d03.e1: opset 13 vs 17 × ORT optimisation levels: latency at a fixed batch."""
    from workloads.models import mlp, ortbench

    opsets, levels, batch = list(p.opsets), list(p.levels), p.batch
    intra, inter = p.intra_op_num_threads, p.inter_op_num_threads
    models = {op: cached_model(op) for op in opsets}
    out = Output()
    mt = Table.of(
        "exported models",
        [
            ("opset", ""),
            ("file size", "KiB"),
            ("exported nodes", "nodes"),
            ("held-out accuracy (torch, at training)", "%"),
            ("held-out accuracy (ORT)", "%"),
        ],
        caption=f"{len(mlp.digits_split().y_test)} held-out digits, 8×8 upsampled to 28×28; TorchScript exporter.",
    )
    for op, path in models.items():
        nodes = sum(ortbench.op_counts(path).values())
        torch_acc = float(mlp.metadata(path).get("ailab.test_accuracy", "nan"))
        mt.add(op, path.stat().st_size / 1024, nodes, 100 * torch_acc, 100 * _ort_accuracy(path))
        out.artifacts[f"mlp.onnx opset {op}"] = str(path)
    out.tables.append(mt)

    sessions, feeds, nodes = {}, {}, {}
    x, _ = mlp.sample_inputs(batch)
    for op in opsets:
        for lv in levels:
            key = f"{op}/{lv}"
            opt_path = ctx.workdir / f"mlp-opset{op}-{lv}.onnx"
            sessions[key] = ortbench.session(models[op], lv, intra, inter, optimized_path=opt_path)
            feeds[key] = {mlp.INPUT_NAME: x}
            nodes[key] = sum(ortbench.op_counts(opt_path).values())
    samples = ortbench.interleaved(sessions, feeds, p.warmup, p.iters, p.rounds)
    t = Table.of(
        "latency by opset and optimisation level",
        [
            ("opset", ""),
            ("level", ""),
            ("batch", "samples"),
            ("nodes after optimisation", "nodes"),
            ("p50", "µs"),
            ("p95", "µs"),
            ("mean", "µs"),
            ("throughput (batch / mean)", "samples/s"),
            (f"p50 vs {levels[0]}", "%"),
        ],
    )
    bars = Series("p50 latency", x=Column("optimisation level", ""), y=Column("p50", "µs"), kind="bar")
    for op in opsets:
        base = ortbench.Stats.of(samples[f"{op}/{levels[0]}"], batch).p50_us
        for lv in levels:
            s = ortbench.Stats.of(samples[f"{op}/{lv}"], batch)
            t.add(
                op,
                lv,
                batch,
                nodes[f"{op}/{lv}"],
                s.p50_us,
                s.p95_us,
                s.mean_us,
                s.samples_per_s,
                100 * (s.p50_us / base - 1),
            )
            bars.point(f"opset {op}", lv, s.p50_us)  # type: ignore[arg-type] - bar plots label ticks with x
    out.tables.append(t)
    out.series.append(bars)
    out.notes += [
        _thread_note(p),
        _opset_note(models),
    ]
    return out


def dynamic_batch(ctx: Context, p: DynamicBatchParams) -> Output:
    """d03.e2: one session with a dynamic batch axis, fed batches 1/8/32: latency and throughput per EP."""
    import onnxruntime as ort

    from workloads.models import mlp, ortbench

    batches, level = list(p.batches), p.level
    intra, inter = p.intra_op_num_threads, p.inter_op_num_threads
    model = cached_model(p.opset)
    out = Output()
    providers = ["CPUExecutionProvider"]
    available = ort.get_available_providers()
    if ctx.device == "cuda" and "CUDAExecutionProvider" in available:
        providers.append("CUDAExecutionProvider")
    elif ctx.device == "cuda":
        out.notes.append(f"CUDA EP not measured: this onnxruntime build offers only {', '.join(available)}.")
    else:
        out.notes.append(
            "CUDA EP not measured: no GPU on this host (the curriculum's CUDA EP run needs one); CPU EP only."
        )
    t = Table.of(
        "dynamic batch latency and throughput",
        [
            ("execution provider", ""),
            ("batch", "samples"),
            ("p50", "µs"),
            ("p95", "µs"),
            ("p50 per sample", "µs/sample"),
            ("throughput (batch / mean)", "samples/s"),
            ("output shape check", ""),
        ],
    )
    thr = Series(
        "throughput vs batch",
        x=Column("batch", "samples"),
        y=Column("throughput (batch / mean)", "samples/s"),
        log_x=True,
    )
    lat = Series("p50 latency vs batch", x=Column("batch", "samples"), y=Column("p50", "µs"), log_x=True)
    for prov in providers:
        chain = (prov, "CPUExecutionProvider") if prov != "CPUExecutionProvider" else (prov,)
        sess = ortbench.session(model, level, intra, inter, providers=chain)
        feeds, shapes = {}, {}
        for b in batches:
            x, _ = mlp.sample_inputs(b)
            feeds[str(b)] = {mlp.INPUT_NAME: x}
            shapes[str(b)] = tuple(sess.run(None, feeds[str(b)])[0].shape)
        samples = ortbench.interleaved(dict.fromkeys(feeds, sess), feeds, p.warmup, p.iters, p.rounds)
        # ORT silently falls back to CPU when a provider fails to initialise: label what the session really uses
        label = sess.get_providers()[0].removesuffix("ExecutionProvider")
        for b in batches:
            s = ortbench.Stats.of(samples[str(b)], b)
            ok = "ok" if shapes[str(b)] == (b, mlp.NUM_CLASSES) else f"got {shapes[str(b)]}"
            t.add(label, b, s.p50_us, s.p95_us, s.p50_us / b, s.samples_per_s, ok)
            thr.point(label, b, s.samples_per_s)
            lat.point(label, b, s.p50_us)
    out.tables.append(t)
    out.series += [thr, lat]
    out.notes.insert(0, _thread_note(p) + f" Optimisation level {level}; one session serves every batch size.")
    return out


def opt_off_vs_all(ctx: Context, p: OptOffOnParams) -> Output:
    """d03.e3: all graph optimisations off vs all on: latency, start-up and peak RSS, each in a fresh process."""
    from workloads.models import ortbench

    levels, batches, threads = list(p.levels), list(p.batches), p.intra_op_num_threads
    model = cached_model(p.opset)
    runs: dict[tuple[str, int], list[ortbench.IsolatedRun]] = {}
    for _ in range(p.repeats):  # alternate settings within each repeat so drift hits all of them alike
        for b in batches:
            for lv in levels:
                r = ortbench.measure_isolated(model, lv, b, p.warmup, p.iters, threads)
                runs.setdefault((lv, b), []).append(r)
    t = Table.of(
        "optimisations off vs on (fresh process per run)",
        [
            ("level", ""),
            ("batch", "samples"),
            ("runs", "processes"),
            ("p50", "µs"),
            ("p95", "µs"),
            ("throughput (batch / mean)", "samples/s"),
            ("session create", "ms"),
            ("RSS before session", "MiB"),
            ("peak RSS", "MiB"),
            ("peak − before", "MiB"),
        ],
        caption="Each value is the median over the runs; p50/p95 are over all timed calls of a run.",
    )

    def med(xs: list[float]) -> float:
        return float(statistics.median(xs))

    for b in batches:
        for lv in levels:
            rs = runs[(lv, b)]
            t.add(
                lv,
                b,
                len(rs),
                med([r.stats["p50_us"] for r in rs]),
                med([r.stats["p95_us"] for r in rs]),
                med([r.stats["samples_per_s"] for r in rs]),
                med([r.session_create_ms for r in rs]),
                med([r.rss_before_session_mib for r in rs]),
                med([r.peak_rss_mib for r in rs]),
                med([r.peak_rss_mib - r.rss_before_session_mib for r in rs]),
            )
    out = Output(tables=[t])
    out.notes += [
        f"Each (level, batch, repeat) ran in its own `python -m workloads.models.ortbench` process; "
        f"intra_op_num_threads={threads}, warm-up {p.warmup}, {p.iters} timed calls.",
        "Peak RSS is the process's VmHWM (/proc/self/status) at the end; 'before' is the same reading after importing "
        "onnxruntime and numpy, so the difference is what creating the session and running it added.",
    ]
    return out
