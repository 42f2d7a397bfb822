"""`lab infer`: classify held-out digits with the Day-3 ONNX model in ONNX Runtime (onnx_infer.py from the CLI)."""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from ailab.contract.paths import work_dir

console = Console()
err = Console(stderr=True)


def _default_model() -> Path:
    return work_dir() / "models" / "mlp-opset17" / "mlp.onnx"


def infer(
    model: Annotated[
        Path | None, typer.Option(help="ONNX model (default: the Day-3 MLP under .lab/work/models, trained if absent)")
    ] = None,
    batch: Annotated[int, typer.Option(help="images per session.run call, >= 1")] = 8,
    samples: Annotated[int, typer.Option(help="held-out digits to classify, >= 1")] = 32,
    opt_level: Annotated[str, typer.Option(help="ORT graph optimisation: disabled, basic, extended, all")] = "all",
    threads: Annotated[int, typer.Option(help="intra_op_num_threads")] = 1,
    show: Annotated[int, typer.Option(help="prediction rows to print")] = 16,
    as_json: Annotated[bool, typer.Option("--json", help="machine-readable output")] = False,
) -> None:
    """Run held-out digits through an ONNX model in ONNX Runtime and print predictions and accuracy."""
    from workloads.models.onnx_infer import InferError
    from workloads.models.onnx_infer import infer as run_infer

    path = model or _default_model()
    try:
        r = run_infer(path, batch, samples, opt_level, threads, export=model is None)
    except InferError as exc:
        err.print(f"[bold red]error:[/] {exc}")
        raise typer.Exit(2) from None
    if as_json:
        print(json.dumps(asdict(r)))
        return
    t = Table("index", "label", "predicted", "confidence", title=f"{r.model} ({', '.join(r.providers)})")
    for p in r.predictions[:show]:
        style = "" if p.label == p.predicted else "red"
        t.add_row(str(p.index), str(p.label), str(p.predicted), f"{p.confidence:.3f}", style=style)
    console.print(t)
    correct = sum(p.label == p.predicted for p in r.predictions)
    console.print(
        f"accuracy {r.accuracy:.4f} ({correct}/{r.samples}); batch {r.batch}, {r.calls} session.run calls, "
        f"{r.total_ms:.2f} ms in ORT"
    )


def register(app: typer.Typer) -> None:
    app.command("infer")(infer)
