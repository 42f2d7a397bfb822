"""The lab exporter (workloads/exporters): GPU metrics through NVML, host metrics when there is no GPU."""

from __future__ import annotations

import sys

from ailab.contract.paths import REPO_ROOT
from ailab.local.spec import HOST, PlatformContext, ServiceSpec

DEFAULT_PORT = 9108


def spec(ctx: PlatformContext) -> ServiceSpec:
    port = ctx.port("exporter.metrics", DEFAULT_PORT)
    return ServiceSpec(
        name="exporter",
        argv=[sys.executable, "-m", "workloads.exporters", f"--port={port}", f"--addr={HOST}"],
        ports={"metrics": port},
        ready=f"http://{HOST}:{port}/metrics",
        log=ctx.log_path("exporter"),
        cwd=REPO_ROOT,
        ready_timeout_s=20.0,
    )
