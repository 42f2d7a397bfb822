"""What `lab run` hands a telemetry runner as ctx.platform: the real local platform on free ports."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from ailab.local.platform import Platform


def _start(
    services: list[str], state_dir: Path, options: dict[str, Any] | None = None, supervise: bool = False
) -> Platform:
    return Platform(services=services, state_dir=state_dir, free_ports=True, options=options, supervise=supervise)


@pytest.fixture(scope="session")
def telemetry_platform_factory() -> Callable[..., Platform]:
    """A platform factory: starts the named services (tritonserver, haproxy, syslog-ng, prometheus), stops them."""
    return _start
