"""d76.e1: deploy an OpenTelemetry Collector — only where a collector binary exists on this host; otherwise a skip
that says what was looked for and why none can be installed here."""

from __future__ import annotations

import shutil

from ailab.contract import Context, Output, Skip

BINARIES = ("otelcol", "otelcol-contrib", "otelcol-core", "opentelemetry-collector")


def otel_collector(ctx: Context) -> Output:
    found = {b: p for b in BINARIES if (p := shutil.which(b))}
    if found:
        raise Skip(
            f"found {', '.join(f'{b} at {p}' for b, p in found.items())}, but the lab has no collector runner yet "
            "(its configuration and pipeline checks are not written)"
        )
    raise Skip(
        "no OpenTelemetry Collector binary on this host (looked for " + ", ".join(BINARIES) + " on PATH) and none is "
        "installable here as a binary: Debian has no otelcol/opentelemetry-collector package, PyPI and npm carry "
        "only the SDKs, and compiling one from its Go modules needs a Go module proxy, which this host does not reach "
        "(Debian's golang-go 1.19 is also older than the collector's modules require); the lab does not build a "
        "collector yet. The lab's telemetry path here is syslog-ng for logs (d76.e2), Triton's own "
        "trace files for traces (d76.e3) and Prometheus for metrics (d76.e4)"
    )
