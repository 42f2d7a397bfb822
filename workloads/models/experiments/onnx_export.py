"""What the exporters put into the ONNX graph of the Day-3 MLP (d03.e4–e5): a custom autograd.Function in place of
one ReLU through each exporter path, and node counts before/after constant folding and each ORT optimisation level.

torch and onnxruntime are imported inside the runners (through the area's library modules).
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from ailab.contract import Context, Output, Params, Table
from workloads.models.experiments.common import Level, Opset
from workloads.models.experiments.ort_bench import cached_model

Variant = Literal["aten_body", "numpy_body", "symbolic_custom_domain", "symbolic_onnx_relu"]  # custom_fn.VARIANTS
Exporter = Literal["torchscript", "torchscript_no_inlining", "dynamo"]  # custom_fn.EXPORTERS
FoldExporter = Literal["torchscript", "dynamo"]  # folding.FOLD_EXPORTERS


class CustomFunctionParams(Params):
    opset: Opset = 17
    variants: list[Variant] = Field(min_length=1, description="bodies of the custom function replacing act1")
    exporters: list[Exporter] = Field(min_length=1, description="exporter paths tried for each variant")


class NodeCountParams(Params):
    opsets: list[Opset] = Field(min_length=1)
    levels: list[Level] = Field(min_length=1)
    fold_exporters: list[FoldExporter] = Field(min_length=1, description="exporters run with folding off and on")


def custom_function_export(ctx: Context, p: CustomFunctionParams) -> Output:
    """d03.e4: one ReLU replaced by a custom autograd.Function: what each exporter path and ORT do with it."""
    from workloads.models import custom_fn, mlp

    model = mlp.default_trained().model
    variants, exporters = list(p.variants), list(p.exporters)
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
            a = custom_fn.attempt(model, v, e, ctx.workdir, p.opset)
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


def node_counts(ctx: Context, p: NodeCountParams) -> Output:
    """d03.e5: node counts before/after exporter constant folding and after each ORT optimisation level."""
    from workloads.models import folding, mlp, ortbench

    opsets, levels = list(p.opsets), list(p.levels)
    trained = mlp.default_trained().model
    split = mlp.digits_split()
    std_model = folding.StandardisedMLP(trained, float(split.x_train.mean()), float(split.x_train.std()))
    out = Output()
    ft = Table.of(
        "exporter constant folding",
        [("model", ""), ("exporter", ""), ("constant folding", ""), ("nodes", "nodes"), ("op types", "")],
    )
    for exporter in p.fold_exporters:
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
    inputs = [(f"mlp opset {op}", cached_model(op), op) for op in opsets]
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
