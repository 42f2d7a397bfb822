"""`lab bench`: load-test a Triton model with the lab's generator and/or perf_analyzer, side by side."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from ailab.contract import paths
from ailab.local import state

console = Console()
err = Console(stderr=True)

DRIVERS = ("lab", "perf_analyzer", "both")


def _fail(message: str) -> typer.Exit:
    err.print(f"[bold red]error:[/] {message}")
    return typer.Exit(2)


def _running_triton(protocol: str) -> tuple[str, str]:
    recs = state.services(paths.state_dir())
    if "triton" not in recs:
        raise _fail("--url: not given and no triton is running from `lab up` (start one with `lab up`)")
    ports = recs["triton"].ports
    return f"127.0.0.1:{ports[protocol]}", f"http://127.0.0.1:{ports['metrics']}/metrics"


def bench(
    model: Annotated[str, typer.Option(help="model name in the server's repository")] = "mlp",
    protocol: Annotated[str, typer.Option(help="grpc or http")] = "grpc",
    mode: Annotated[str, typer.Option(help="closed (concurrency N) or open (Poisson arrivals at --qps)")] = "closed",
    concurrency: Annotated[int, typer.Option(help="closed loop: requests in flight")] = 8,
    qps: Annotated[float, typer.Option(help="open loop: target requests/s")] = 100.0,
    batch: Annotated[int, typer.Option(help="batch size of each request")] = 1,
    warmup: Annotated[float, typer.Option(help="warm-up before the measured window, s")] = 1.0,
    duration: Annotated[float, typer.Option(help="measured window, s")] = 5.0,
    requests: Annotated[int | None, typer.Option(help="measure this many requests instead of --duration")] = None,
    driver: Annotated[str, typer.Option(help="lab, perf_analyzer or both")] = "lab",
    processes: Annotated[int, typer.Option(help="split the lab generator over this many processes")] = 1,
    backoff: Annotated[
        float, typer.Option(help="closed loop: wait after a failed request, s, doubling per consecutive failure")
    ] = 0.0,
    backoff_max: Annotated[float, typer.Option(help="cap of that wait, s")] = 1.0,
    retries: Annotated[int, typer.Option(help="retries of a refused connection (never reached the server)")] = 0,
    url: Annotated[str | None, typer.Option(help="host:port of the protocol (default: the `lab up` triton)")] = None,
    metrics_url: Annotated[str | None, typer.Option(help="Triton metrics URL (default: the `lab up` triton)")] = None,
    out: Annotated[Path | None, typer.Option(help="also write the results as JSON to this file")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="machine-readable output")] = False,
) -> None:
    """Measure latency percentiles and throughput of one model; with --driver both, perf_analyzer runs too."""
    for name, value, allowed in (
        ("--protocol", protocol, ("grpc", "http")),
        ("--mode", mode, ("closed", "open")),
        ("--driver", driver, DRIVERS),
    ):
        if value not in allowed:
            raise _fail(f"{name} {value!r}: allowed {', '.join(allowed)}")
    for name, num in (
        ("--concurrency", concurrency),
        ("--batch", batch),
        ("--requests", requests or 1),
        ("--processes", processes),
    ):
        if num < 1:
            raise _fail(f"{name} {num}: must be >= 1")
    if qps <= 0 or duration <= 0 or warmup < 0:
        raise _fail(f"--qps {qps} / --duration {duration} / --warmup {warmup}: must be > 0 (warm-up >= 0)")
    from workloads.serving import loadgen, perf  # heavy imports only when benchmarking

    if url is None:
        url, default_metrics = _running_triton(protocol)
        metrics_url = metrics_url or default_metrics
    results: dict[str, dict] = {}
    if driver in ("lab", "both"):
        spec = loadgen.LoadSpec(
            url=url,
            model=model,
            protocol=protocol,
            mode=mode,
            concurrency=concurrency,
            qps=qps,
            batch=batch,
            warmup_s=warmup,
            duration_s=duration,
            requests=requests,
            metrics_url=metrics_url,
            processes=processes,
            backoff_s=backoff,
            backoff_max_s=backoff_max,
            retries=retries,
        )
        try:
            spec.check()
        except ValueError as exc:
            raise _fail(str(exc)) from None
        results["lab"] = loadgen.run(spec).to_dict()
    if driver in ("perf_analyzer", "both"):
        try:
            pa = perf.run(
                url,
                model,
                protocol,
                concurrency,
                batch,
                request_count=requests or 200,
                request_rate=qps if mode == "open" else None,
            )
        except perf.PerfAnalyzerError as exc:
            raise _fail(str(exc)) from None
        results["perf_analyzer"] = pa.to_dict()
    if out:
        out.write_text(json.dumps(results, indent=1))
    if as_json:
        print(json.dumps(results, indent=1))
        return
    _print(results, mode, concurrency, qps)


def _print(results: dict[str, dict], mode: str, concurrency: int, qps: float) -> None:
    load = f"concurrency {concurrency}" if mode == "closed" else f"target {qps:g} req/s"
    t = Table(
        "driver", "req/s", "p50 ms", "p90 ms", "p95 ms", "p99 ms", "p99.9 ms", "errors", title=f"lab bench ({load})"
    )
    if "lab" in results:
        r = results["lab"]
        lat = r["latency_ms"]
        errs = ", ".join(f"{k} {v}" for k, v in r["errors"].items()) or "none"
        t.add_row(
            "lab", f"{r['throughput_rps']:.1f}", *(f"{lat[p]:.2f}" for p in ("p50", "p90", "p95", "p99", "p99.9")), errs
        )
    if "perf_analyzer" in results:
        r = results["perf_analyzer"]
        t.add_row(
            "perf_analyzer",
            f"{r['throughput_rps']:.1f}",
            f"{r['p50_ms']:.2f}",
            f"{r['p90_ms']:.2f}",
            f"{r['p95_ms']:.2f}",
            f"{r['p99_ms']:.2f}",
            "-",
            "-",
        )
    console.print(t)
    if "lab" in results:
        r = results["lab"]
        for kind, msg in r["error_examples"].items():
            console.print(f"[red]{kind}[/]: {msg}")
        srv = r["server"]
        if srv:
            console.print(
                f"server: avg batch {srv['avg_batch']:.2f}, queue {srv['queue_us'] / 1e3:.2f} ms/req, "
                f"compute {srv['compute_us'] / 1e3:.2f} ms/req"
            )
        console.print(f"achieved {r['achieved_qps']:.1f} req/s sent; {r['verdict']}")


def register(app: typer.Typer) -> None:
    app.command("bench")(bench)
