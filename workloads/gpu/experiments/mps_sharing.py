"""MPS on one GPU (d47.e1–e5): client processes sharing the GPU with and without an MPS daemon started for this run
in private pipe/log directories (the compute mode is never changed); throughput, P50/P99, utilisation read from the
lab's exporter."""

from __future__ import annotations

from functools import lru_cache
from typing import Literal

from pydantic import Field

from ailab.contract import Context, Output, Params, Skip

Part = Literal["daemon", "throughput", "small_requests", "utilisation", "p99"]


class MpsParams(Params):
    parts: list[Part] = Field(min_length=1)
    clients: list[int] = Field([2, 8], min_length=1, description="client process counts (first = two-process case)")
    seconds: float = Field(5.0, gt=0)
    batch: int = Field(1, gt=0)
    dim: int = Field(1024, gt=0)


@lru_cache(maxsize=1)
def _study(clients: tuple[int, ...], seconds: float, batch: int, dim: int, root: str) -> dict:
    from pathlib import Path

    from workloads.gpu.clients import UtilSampler, during, run_clients
    from workloads.gpu.mps import control_log, mps_daemon, server_list

    cfg = {"seconds": seconds, "batch": batch, "dim": dim, "layers": 4}
    sampler = UtilSampler()
    res: dict = {"runs": []}
    for n in clients:
        run, util = during(sampler, lambda n=n: run_clients(n, cfg))
        res["runs"].append(("off", run, util))
    with mps_daemon(Path(root)) as env:
        for n in clients:
            run, util = during(sampler, lambda n=n, env=env: run_clients(n, cfg, env=env))
            res["runs"].append(("on", run, util))
            if n == clients[0]:
                res["servers"] = server_list(env)
    res["log"] = control_log(Path(root))
    return res


def mps_study(ctx: Context, p: MpsParams) -> Output:
    from workloads.engines.tables import table
    from workloads.gpu.mps import MpsUnavailableError

    if ctx.device != "cuda":
        raise Skip("MPS needs an NVIDIA GPU and nvidia-cuda-mps-control")
    try:
        res = _study(tuple(p.clients), p.seconds, p.batch, p.dim, str(ctx.workdir.parent / "mps"))
    except MpsUnavailableError as e:
        raise Skip(f"MPS daemon could not start: {e}") from None
    rows = []
    for mode, run, util in res["runs"]:
        off = next(r for m, r, _ in res["runs"] if m == "off" and r.clients == run.clients)
        rows.append(
            {
                "mps": mode,
                "clients": run.clients,
                "requests": run.requests,
                "requests_per_s": run.requests_per_s,
                "p50_ms": run.p50_ms,
                "p99_ms": run.p99_ms,
                "gpu_util_pct": util,
                "throughput_vs_off": round(run.requests_per_s / off.requests_per_s, 3),
                "p99_vs_off": round(run.p99_ms / off.p99_ms, 3),
                "per_client_requests": str(run.per_client_req),
            }
        )
    out = Output()
    cap = (
        f"closed-loop clients, each a process with its own CUDA context: batch {p.batch}, 4 x Linear({p.dim}) FP16, "
        f"H2D + forward + D2H per request, {p.seconds} s timed together"
    )
    pick = {
        "daemon": [r for r in rows if r["clients"] == p.clients[0]],
        "throughput": [r for r in rows if r["clients"] == p.clients[0]],
        "small_requests": [r for r in rows if r["clients"] == max(p.clients)],
        "utilisation": rows,
        "p99": rows,
    }
    for part in p.parts:
        out.tables.append(table(part, pick[part], caption=cap))
    if "daemon" in p.parts:
        out.notes.append("MPS server list while the clients ran: " + (res.get("servers") or "(empty)")[:200])
        out.notes.append("control.log tail: " + res["log"][-600:].replace("\n", " | "))
    if "utilisation" in p.parts:
        out.notes.append(
            "gpu_util_pct: mean of lab_gpu_utilization_ratio scraped from the lab's exporter "
            "(workloads.exporters, NVML) every 0.2 s during the run, client start-up included"
        )
    return out
