"""What a local service is: the `ServiceSpec` every ailab/local/services/<name>.py returns, and its context."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ailab.contract.ports import HOST, free_port

__all__ = ["HOST", "PlatformContext", "Probe", "ServiceSpec", "free_port"]


@dataclass
class PlatformContext:
    """What a service module gets to build its spec: the week, where state lives, and the shared port map.

    Ports are named `<service>.<role>` (e.g. `triton.metrics`) so that one service can find another's
    port (Prometheus scrapes `triton.metrics`). With `free_ports` every port is chosen by the kernel,
    otherwise the service's default is used.
    """

    week: int
    state_dir: Path
    free_ports: bool = False
    ports: dict[str, int] = field(default_factory=dict)
    options: dict[str, Any] = field(default_factory=dict)  # per-service knobs, e.g. {"triton.model_repository": p}

    def port(self, name: str, default: int) -> int:
        """The port called `name`, fixed once chosen so that every service sees the same number."""
        if name not in self.ports:
            self.ports[name] = free_port() if self.free_ports else default
        return self.ports[name]

    def url(self, name: str, default: int, path: str = "") -> str:
        return f"http://{HOST}:{self.port(name, default)}{path}"

    def log_path(self, service: str) -> Path:
        return self.state_dir / "logs" / f"{service}.log"

    def data_dir(self, service: str) -> Path:
        d = self.state_dir / "data" / service
        d.mkdir(parents=True, exist_ok=True)
        return d


Probe = str | Callable[[], bool]  # an URL that must answer 200, or a function that returns True when ready


@dataclass
class ServiceSpec:
    """One local process: how to start it, which ports it binds, and how to tell it is ready."""

    name: str
    argv: list[str]
    ports: dict[str, int]  # role -> port, all on 127.0.0.1; checked free before start
    ready: Probe
    log: Path
    env: dict[str, str] = field(default_factory=dict)  # added to (not replacing) the lab's environment
    depends_on: tuple[str, ...] = ()
    cwd: Path | None = None
    ready_timeout_s: float = 60.0
    stop_signal: str = "SIGTERM"  # tritonserver wants SIGINT for a clean shutdown
    info: dict[str, str] = field(default_factory=dict)  # shown by `lab status` (e.g. model repository)
