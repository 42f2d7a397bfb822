"""Alertmanager (Debian's /usr/bin/prometheus-alertmanager) with the generated routing tree, sending to the
local webhook receiver. Clustering is off (it would bind a second port, 9094, on every address)."""

from __future__ import annotations

import shutil

from ailab.local.registry import PlatformError
from ailab.local.spec import HOST, PlatformContext, ServiceSpec
from ailab.observability import alertmanager
from ailab.observability.generate import dump_yaml

DEFAULT_PORT = 9093


def spec(ctx: PlatformContext) -> ServiceSpec:
    binary = shutil.which("prometheus-alertmanager") or shutil.which("alertmanager")
    if binary is None:
        raise PlatformError(
            "service alertmanager: binary 'prometheus-alertmanager' not found (apt-get install prometheus-alertmanager)"
        )
    port = ctx.port("alertmanager.http", DEFAULT_PORT)
    cfg = ctx.state_dir / "alertmanager" / "alertmanager.yaml"
    cfg.parent.mkdir(parents=True, exist_ok=True)
    webhook = ctx.url("webhook.http", 9095)
    cfg.write_text(dump_yaml(alertmanager.config(webhook_base=webhook, fast=True)))
    return ServiceSpec(
        name="alertmanager",
        argv=[
            binary,
            f"--config.file={cfg}",
            f"--storage.path={ctx.data_dir('alertmanager')}",
            f"--web.listen-address={HOST}:{port}",
            "--cluster.listen-address=",
        ],
        ports={"http": port},
        ready=f"http://{HOST}:{port}/-/ready",
        log=ctx.log_path("alertmanager"),
        ready_timeout_s=30.0,
        info={"config": str(cfg), "webhook": webhook},
    )
