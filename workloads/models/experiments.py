"""Runners of Day 3 (d03.e1–e5): PyTorch → ONNX → ONNX Runtime on the digits MLP.

Timing: warm-up calls first, then every call timed with perf_counter_ns; percentiles are over all calls.
Settings that are compared are timed round-robin in slices so drift on a shared machine hits all alike.
"""

from __future__ import annotations

import statistics
from pathlib import Path

from ailab.contract import Column, Context, Output, Series, Table
from ailab.contract.paths import work_dir
from workloads.models import custom_fn, folding, mlp, ortbench

SUPPORTED_OPSETS = range(13, 21)  # 20 is the TorchScript exporter's maximum in torch 2.13; 13 the curriculum's oldest


def _check(ctx: Context, **allowed: object) -> None:
    """Validate list parameters before anything runs: each value must be in its allowed set (or >= 1 for ints)."""
    for name, ok in allowed.items():
        values = ctx.param(name)
        values = values if isinstance(values, list) else [values]
        bad = [v for v in values if (v not in ok if ok is not int else not (isinstance(v, int) and v >= 1))]
        if bad or not values:
            if ok is int:
                what = "integers >= 1"
            elif isinstance(ok, range):
                what = f"{ok.start}..{ok.stop - 1}"
            else:
                what = ", ".join(map(str, ok))  # type: ignore[call-overload]
            raise ValueError(f"params.{name} {values}: allowed {what}")


def _model(opset: int) -> Path:
    """The cached Day-3 model for this opset, shared by all d03 experiments (trained once, ~1 s)."""
    return mlp.export_default_model(work_dir() / "models" / f"mlp-opset{opset}", opset=opset)


def _threads(ctx: Context) -> tuple[int, int]:
    return int(ctx.param("intra_op_num_threads", 1)), int(ctx.param("inter_op_num_threads", 1))


def _thread_note(ctx: Context) -> str:
    intra, inter = _threads(ctx)
    return (
        f"ORT CPU EP, intra_op_num_threads={intra}, inter_op_num_threads={inter}, sequential execution; "
        f"warm-up {ctx.param('warmup')} calls, then {ctx.param('iters')} timed calls per setting "
        f"in {ctx.param('rounds', 1)} interleaved round(s); latency is one session.run() call."
    )


def _ort_accuracy(model: Path) -> float:
    """Held-out accuracy (fraction) of the ONNX model run by ORT on the whole test split."""
    split = mlp.digits_split()
    sess = ortbench.session(model, "all")
    logits = sess.run(None, {mlp.INPUT_NAME: split.x_test})[0]
    return float((logits.argmax(axis=1) == split.y_test).mean())


def _opset_note(models: dict[int, Path]) -> str:
    """Whether the exports of different opsets contain the same ops (measured, not assumed)."""
    counts = {op: ortbench.fmt_ops(ortbench.op_counts(p)) for op, p in models.items()}
    if len(set(counts.values())) == 1:
        return (
            f"The opset {' and '.join(map(str, counts))} exports contain the same ops ({next(iter(counts.values()))}): "
            "the opset only changes which operator versions the graph declares."
        )
    return "The exports differ by opset: " + "; ".join(f"opset {op}: {c}" for op, c in counts.items())


def opset_opt_levels(ctx: Context) -> Output:
    """d03.e1: opset 13 vs 17 × ORT optimisation levels: latency at a fixed batch."""
    _check(ctx, opsets=SUPPORTED_OPSETS, levels=ortbench.LEVELS, batch=int, warmup=int, iters=int, rounds=int)
    opsets, levels, batch = list(ctx.param("opsets")), list(ctx.param("levels")), int(ctx.param("batch"))
    intra, inter = _threads(ctx)
    models = {op: _model(op) for op in opsets}
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
    samples = ortbench.interleaved(
        sessions, feeds, int(ctx.param("warmup")), int(ctx.param("iters")), int(ctx.param("rounds", 1))
    )
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
        _thread_note(ctx),
        _opset_note(models),
    ]
    return out


def dynamic_batch(ctx: Context) -> Output:
    """d03.e2: one session with a dynamic batch axis, fed batches 1/8/32: latency and throughput per EP."""
    _check(ctx, batches=int, level=ortbench.LEVELS, opset=SUPPORTED_OPSETS, iters=int, rounds=int)
    import onnxruntime as ort

    batches, level = [int(b) for b in ctx.param("batches")], str(ctx.param("level", "all"))
    intra, inter = _threads(ctx)
    model = _model(int(ctx.param("opset", 17)))
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
        samples = ortbench.interleaved(
            dict.fromkeys(feeds, sess),
            feeds,
            int(ctx.param("warmup")),
            int(ctx.param("iters")),
            int(ctx.param("rounds", 1)),
        )
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
    out.notes.insert(0, _thread_note(ctx) + f" Optimisation level {level}; one session serves every batch size.")
    return out


def opt_off_vs_all(ctx: Context) -> Output:
    """d03.e3: all graph optimisations off vs all on: latency, start-up and peak RSS, each in a fresh process."""
    _check(ctx, levels=ortbench.LEVELS, batches=int, repeats=int, opset=SUPPORTED_OPSETS, iters=int)
    levels, batches = list(ctx.param("levels")), [int(b) for b in ctx.param("batches")]
    repeats, threads = int(ctx.param("repeats")), _threads(ctx)[0]
    model = _model(int(ctx.param("opset", 17)))
    runs: dict[tuple[str, int], list[ortbench.IsolatedRun]] = {}
    for _ in range(repeats):  # alternate settings within each repeat so drift hits all of them alike
        for b in batches:
            for lv in levels:
                r = ortbench.measure_isolated(model, lv, b, int(ctx.param("warmup")), int(ctx.param("iters")), threads)
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
        f"intra_op_num_threads={threads}, warm-up {ctx.param('warmup')}, {ctx.param('iters')} timed calls.",
        "Peak RSS is the process's VmHWM (/proc/self/status) at the end; 'before' is the same reading after importing "
        "onnxruntime and numpy, so the difference is what creating the session and running it added.",
    ]
    return out


def custom_function_export(ctx: Context) -> Output:
    """d03.e4: one ReLU replaced by a custom autograd.Function: what each exporter path and ORT do with it."""
    _check(ctx, variants=tuple(custom_fn.VARIANTS), exporters=custom_fn.EXPORTERS, opset=SUPPORTED_OPSETS)
    model = mlp.default_trained().model
    variants, exporters = list(ctx.param("variants")), list(ctx.param("exporters"))
    t = Table.of(
        "custom autograd.Function in place of act1",
        [
            ("function body", ""),
            ("exporter", ""),
            ("export", ""),
            ("ONNX ops", ""),
            ("ORT load+run", ""),
            ("max |ORT − torch|", "logit"),
            ("error (first line)", ""),
            ("why", ""),
            ("exporter warning", ""),
        ],
        caption="Run checked on a batch of 8 (export traced batch 2), so a baked-in shape would show here.",
    )
    for v in variants:
        for e in exporters:
            a = custom_fn.attempt(model, v, e, ctx.workdir, int(ctx.param("opset", 17)))
            run = "—" if a.run_ok is None else ("ok" if a.run_ok else "error")
            t.add(
                v,
                e,
                "ok" if a.export_ok else "error",
                a.ops or "—",
                run,
                a.max_abs_diff,
                a.error or "—",
                a.explanation,
                a.exporter_warning or "—",
            )
    out = Output(tables=[t])
    out.notes += [
        "Exporter paths: `torchscript` = torch.onnx.export(dynamo=False) with autograd inlining (default); "
        "`torchscript_no_inlining` = the same with autograd_inlining=False; `dynamo` = torch.onnx.export(dynamo=True), "
        "which traces through the Function with torch.export and ignores `symbolic`.",
        "Failures here are the measurement: each exception is caught and recorded with its explanation.",
    ] + [f"{name}: {cls.__doc__}" for name, cls in custom_fn.VARIANTS.items() if name in variants]
    return out


def node_counts(ctx: Context) -> Output:
    """d03.e5: node counts before/after exporter constant folding and after each ORT optimisation level."""
    _check(ctx, opsets=SUPPORTED_OPSETS, levels=ortbench.LEVELS, fold_exporters=folding.FOLD_EXPORTERS)
    opsets, levels = [int(o) for o in ctx.param("opsets")], list(ctx.param("levels"))
    trained = mlp.default_trained().model
    split = mlp.digits_split()
    std_model = folding.StandardisedMLP(trained, float(split.x_train.mean()), float(split.x_train.std()))
    out = Output()
    ft = Table.of(
        "exporter constant folding",
        [("model", ""), ("exporter", ""), ("constant folding", ""), ("nodes", "nodes"), ("op types", "")],
    )
    for exporter in ctx.param("fold_exporters"):
        for name, m in (("mlp", trained), ("standardised_mlp", std_model)):
            for fold in (False, True):
                path = ctx.workdir / f"{name}-{exporter}-fold{int(fold)}.onnx"
                c = folding.export_folding(m, path, exporter, fold)
                ft.add(name, exporter, "on" if fold else "off", sum(c.values()), ortbench.fmt_ops(c))
    out.tables.append(ft)
    ot = Table.of(
        "ORT graph optimisation levels",
        [("model", ""), ("opset", ""), ("level", ""), ("nodes", "nodes"), ("op types", ""), ("saved graph", "KiB")],
        caption="Counted in the graph ORT writes with SessionOptions.optimized_model_filepath (CPU EP).",
    )
    inputs = [(f"mlp opset {op}", _model(op), op) for op in opsets]
    unfolded = ctx.workdir / "standardised_mlp-torchscript-fold0.onnx"
    if unfolded.exists():
        inputs.append(("standardised_mlp (no export folding)", unfolded, 17))
    for label, path, op in inputs:
        for lv in levels:
            opt = ctx.workdir / f"{path.stem}-ort-{lv}.onnx"
            c = ortbench.optimized_counts(path, lv, opt)
            ot.add(label, op, lv, sum(c.values()), ortbench.fmt_ops(c), opt.stat().st_size / 1024)
            out.artifacts[f"{label} / {lv}"] = str(opt)
    out.tables.append(ot)
    out.notes += [
        "Constant folding only has work where a sub-graph depends on constants alone; the plain MLP has none, "
        "so the standardised variant ((x − mean) · 1/clamp(std)) shows what folding removes.",
        "Open the artifacts in Netron (netron.app or `pip install netron`) to see the graphs; Netron is not run here.",
        "com.microsoft:FusedGemm is ORT's Gemm+activation fusion (extended level); it is ORT-specific, so a graph "
        "saved at extended/all only loads in ORT.",
    ]
    return out
