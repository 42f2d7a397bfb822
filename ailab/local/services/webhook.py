"""The webhook receiver Alertmanager notifies: records every notification as a JSON line (see
ailab/observability/webhook.py); `info.out` is the file."""

from __future__ import annotations

import sys

from ailab.contract.paths import REPO_ROOT
from ailab.local.spec import HOST, PlatformContext, ServiceSpec

DEFAULT_PORT = 9095


def spec(ctx: PlatformContext) -> ServiceSpec:
    port = ctx.port("webhook.http", DEFAULT_PORT)
    out = ctx.data_dir("webhook") / "notifications.jsonl"
    return ServiceSpec(
        name="webhook",
        argv=[sys.executable, "-m", "ailab.observability.webhook", f"--port={port}", f"--out={out}"],
        ports={"http": port},
        ready=f"http://{HOST}:{port}/",
        log=ctx.log_path("webhook"),
        cwd=REPO_ROOT,
        ready_timeout_s=20.0,
        info={"out": str(out)},
    )
