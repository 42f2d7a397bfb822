"""Micro-benchmark: the load generator's CPU per request for each way of sending it, against a real tritonserver.

    lab up && lab status    # a running tritonserver; then, with its ports:
    .venv/bin/python -m workloads.serving.clientbench --http 127.0.0.1:PORT --grpc 127.0.0.1:PORT --concurrency 8 32

d32.e1 (experiments/drivers.py) runs the same bench against its own server and records it (table client_cpu).
Each client variant runs in its own process, closed loop at each concurrency, and one JSON line per run says the
client process's CPU (user + system, every thread) per finished request in µs, its throughput and latency
percentiles. CPU time, not wall time, is the measure: it holds on a loaded host where throughput does not.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from typing import Any

import numpy as np

VARIANTS = (
    "grpc_aio_tritonclient",  # the generator before: client.AsyncClient, prepared ModelInferRequest on grpc.aio
    "grpc_aio_bytes",  # fastclient.GrpcLoadClient: grpc.aio, request bytes serialised once, response not parsed
    "grpc_sync_threads",  # grpc's synchronous stub, bytes in/out, one thread per request in flight
    "grpc_h2_asyncio",  # h2grpc.GrpcH2LoadClient: raw HTTP/2 frames on one connection, asyncio Protocols, no grpcio
    "grpc_h2_uvloop",  # the same on uvloop's event loop
    "http_aio_tritonclient",  # the HTTP generator before: client.AsyncClient, tritonclient.http.aio (aiohttp)
    "http_asyncio",  # fastclient.HttpLoadClient: raw HTTP/1.1 keep-alive, asyncio Protocols
    "http_uvloop",  # the same on uvloop's event loop (when uvloop is installed)
    "http_sync_threads",  # blocking sockets, one thread per request in flight (perf_analyzer's shape)
)


def _inputs() -> dict[str, np.ndarray]:
    from workloads.serving.loadgen import default_inputs

    return default_inputs(1)


def _cpu() -> float:
    return time.process_time()  # every thread of this process, user + system, ns resolution


async def _async_loop(client: Any, model: str, req: Any, c: int, warmup: float, duration: float) -> dict[str, Any]:
    lat: list[float] = []
    t_start = time.perf_counter() + warmup
    t_end = t_start + duration
    marks: dict[str, float] = {}

    async def worker() -> None:
        while True:
            t = time.perf_counter()
            if t >= t_end:
                return
            await client.infer(model, req)
            if t >= t_start:
                lat.append((time.perf_counter() - t) * 1e3)

    async def mark() -> None:
        await asyncio.sleep(warmup)
        marks["cpu0"] = _cpu()

    m = asyncio.create_task(mark())
    await asyncio.gather(*[worker() for _ in range(c)])
    await m
    cpu = _cpu() - marks["cpu0"]
    await client.close()
    return {"n": len(lat), "cpu_s": cpu, "wall_s": time.perf_counter() - t_start, "lat": lat}


def _threads(send: Any, c: int, warmup: float, duration: float) -> dict[str, Any]:
    """send(i) does one request on thread i's own connection."""
    lats: list[list[float]] = [[] for _ in range(c)]
    t_start = time.perf_counter() + warmup
    t_end = t_start + duration

    def worker(i: int) -> None:
        out = lats[i]
        while True:
            t = time.perf_counter()
            if t >= t_end:
                return
            send(i)
            if t >= t_start:
                out.append((time.perf_counter() - t) * 1e3)

    ths = [threading.Thread(target=worker, args=(i,), daemon=True) for i in range(c)]
    for th in ths:
        th.start()
    time.sleep(max(0.0, t_start - time.perf_counter()))
    cpu0 = _cpu()
    for th in ths:
        th.join()
    cpu = _cpu() - cpu0
    lat = [x for lst in lats for x in lst]
    return {"n": len(lat), "cpu_s": cpu, "wall_s": time.perf_counter() - t_start, "lat": lat}


def _http_sync(url: str, model: str, c: int, warmup: float, duration: float) -> dict[str, Any]:
    from workloads.serving.fastclient import http_request, parse_response

    host, _, port = url.rpartition(":")
    req = http_request(url, model, _inputs())
    socks = [socket.create_connection((host, int(port))) for _ in range(c)]
    for s in socks:
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    bufs = [bytearray() for _ in range(c)]

    def send(i: int) -> None:
        s, buf = socks[i], bufs[i]
        s.sendall(req)
        while True:
            r = parse_response(buf)
            if r is not None:
                if r[0] != 200:
                    raise RuntimeError(f"HTTP {r[0]}: {r[1][:200]!r}")
                del buf[: r[3]]
                return
            buf += s.recv(65536)

    try:
        return _threads(send, c, warmup, duration)
    finally:
        for s in socks:
            s.close()


def _grpc_sync(url: str, model: str, c: int, warmup: float, duration: float) -> dict[str, Any]:
    import grpc

    from workloads.serving.fastclient import GrpcLoadClient

    req = GrpcLoadClient.prepare(None, _inputs(), model)  # type: ignore[arg-type] - uses no state
    ch = grpc.insecure_channel(url)
    call = ch.unary_unary("/inference.GRPCInferenceService/ModelInfer")
    try:
        return _threads(lambda i: call(req, timeout=10), c, warmup, duration)
    finally:
        ch.close()


def measure(variant: str, urls: dict[str, str], model: str, c: int, warmup: float, duration: float) -> dict[str, Any]:
    """One variant at concurrency c in this process: CPU per request (µs), throughput, latency percentiles."""
    from workloads.serving import fastclient
    from workloads.serving.client import AsyncClient
    from workloads.serving.h2grpc import GrpcH2LoadClient

    x = _inputs()
    factories = {  # variant -> (the client over the URLs, on uvloop)
        "grpc_aio_tritonclient": (lambda: AsyncClient(urls["grpc"], "grpc", retries=0), False),
        "http_aio_tritonclient": (lambda: AsyncClient(urls["http"], "http", retries=0), False),
        "grpc_aio_bytes": (lambda: fastclient.GrpcLoadClient(urls["grpc"]), False),
        "grpc_h2_asyncio": (lambda: GrpcH2LoadClient(urls["grpc"]), False),
        "grpc_h2_uvloop": (lambda: GrpcH2LoadClient(urls["grpc"]), True),
        "http_asyncio": (lambda: fastclient.HttpLoadClient(urls["http"]), False),
        "http_uvloop": (lambda: fastclient.HttpLoadClient(urls["http"]), True),
    }
    if variant in factories:
        make, on_uvloop = factories[variant]

        async def go() -> dict[str, Any]:
            cl = make()
            return await _async_loop(cl, model, cl.prepare(x, model), c, warmup, duration)

        if on_uvloop:
            import uvloop

            r = uvloop.run(go())
        else:
            r = asyncio.run(go())
    elif variant == "grpc_sync_threads":
        r = _grpc_sync(urls["grpc"], model, c, warmup, duration)
    elif variant == "http_sync_threads":
        r = _http_sync(urls["http"], model, c, warmup, duration)
    else:
        raise ValueError(f"variant {variant!r}: allowed {', '.join(VARIANTS)}")
    from workloads.serving.stats import percentile

    a = np.sort(np.asarray(r["lat"]))
    return {
        "variant": variant,
        "concurrency": c,
        "requests": r["n"],
        "rps": round(r["n"] / r["wall_s"], 1),
        "client_cores": round(r["cpu_s"] / r["wall_s"], 3),
        "cpu_us_per_request": round(r["cpu_s"] / max(r["n"], 1) * 1e6, 1),
        "p50_ms": round(percentile(a, 50), 3),
        "p99_ms": round(percentile(a, 99), 3),
    }


def bench(
    urls: dict[str, str],
    model: str,
    variants: Sequence[str],
    concurrency: Sequence[int],
    warmup: float = 1.0,
    duration: float = 4.0,
    server_pid: int | None = None,
) -> list[dict[str, Any]]:
    """Each variant at each concurrency, each in a fresh process (so one's threads or event loop cannot tax the
    next); one row per run, or a row with "error" when the variant could not run (e.g. uvloop not installed)."""
    rows = []
    for c in concurrency:
        for v in variants:
            s0, t0 = (_server_cpu(server_pid), time.perf_counter()) if server_pid else (0.0, 0.0)
            arg = {"variant": v, "urls": urls, "model": model, "c": c, "warmup": warmup, "duration": duration}
            p = subprocess.run(
                [sys.executable, "-m", "workloads.serving.clientbench", "--child", json.dumps(arg)],
                capture_output=True,
                text=True,
                check=False,
            )
            if p.returncode != 0:
                rows.append({"variant": v, "concurrency": c, "error": (p.stderr.strip().splitlines() or ["?"])[-1]})
                continue
            row = json.loads(p.stdout.strip().splitlines()[-1])
            if server_pid:  # over the child's whole life (its start-up too): a lower bound of the server's share
                row["server_cores"] = round((_server_cpu(server_pid) - s0) / (time.perf_counter() - t0), 3)
            row["load1"] = round(os.getloadavg()[0], 2)
            rows.append(row)
    return rows


def _server_cpu(pid: int) -> float:
    from workloads.serving.harness import cpu_s

    return cpu_s(pid)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--http", required=False, help="host:port of Triton's HTTP endpoint")
    ap.add_argument("--grpc", required=False, help="host:port of Triton's gRPC endpoint")
    ap.add_argument("--model", default="mlp")
    ap.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=VARIANTS)
    ap.add_argument("--concurrency", nargs="+", type=int, default=[8, 32])
    ap.add_argument("--warmup", type=float, default=1.0)
    ap.add_argument("--duration", type=float, default=4.0)
    ap.add_argument("--child", help=argparse.SUPPRESS)  # JSON: run one measurement in this process
    a = ap.parse_args()
    if a.child:
        print(json.dumps(measure(**json.loads(a.child))), flush=True)
        return
    if not (a.http and a.grpc):
        ap.error("--http and --grpc: both required (a running tritonserver, e.g. `lab up`; see `lab status`)")
    from workloads.serving.common import host_note

    print(json.dumps({"host": host_note()}), flush=True)
    for row in bench({"http": a.http, "grpc": a.grpc}, a.model, a.variants, a.concurrency, a.warmup, a.duration):
        print(json.dumps(row), flush=True)


if __name__ == "__main__":
    main()
