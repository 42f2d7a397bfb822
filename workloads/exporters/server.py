"""Serve the lab collector over HTTP; Prometheus gets OpenMetrics (with exemplars) when it asks for it."""

from __future__ import annotations

import argparse
import signal
import threading

from prometheus_client import CollectorRegistry, start_http_server

from workloads.exporters.collector import LabCollector

DEFAULT_PORT = 9108


def serve(port: int = DEFAULT_PORT, addr: str = "127.0.0.1", collector: LabCollector | None = None) -> LabCollector:
    """Start the exporter in a daemon thread; the collector it serves."""
    registry = CollectorRegistry(auto_describe=False)
    c = collector or LabCollector()
    registry.register(c)
    start_http_server(port, addr=addr, registry=registry)
    return c


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--port", type=int, default=DEFAULT_PORT, help="TCP port of /metrics (default 9108)")
    ap.add_argument("--addr", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    args = ap.parse_args(argv)
    c = serve(args.port, args.addr)
    detail = f"{c.nvml.count} GPU(s) through NVML" if c.nvml.available else f"host only ({c.nvml.error or 'no GPU'})"
    print(f"lab exporter on http://{args.addr}:{args.port}/metrics: {detail}", flush=True)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    stop.wait()
    c.nvml.close()
