"""The local platform's process handling, with a real stand-in service (python -m http.server) instead of Triton.

The Triton service itself is exercised in tests/integration/serving; here the generic parts run in seconds.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import sys
import time
from pathlib import Path

import psutil
import pytest

from ailab.local import registry
from ailab.local.platform import Platform, status
from ailab.local.registry import PlatformError
from ailab.local.spec import PlatformContext, ServiceSpec


def http_service(name: str, port_default: int = 0, argv: list[str] | None = None, **kw):
    """A spec() factory for a tiny HTTP server that is ready when / answers."""

    def spec(ctx: PlatformContext) -> ServiceSpec:
        port = ctx.port(f"{name}.http", port_default)
        cmd = argv or [sys.executable, "-m", "http.server", str(port), "--bind", "127.0.0.1"]
        return ServiceSpec(
            name=name,
            argv=cmd,
            ports={"http": port},
            ready=f"http://127.0.0.1:{port}/",
            log=ctx.log_path(name),
            ready_timeout_s=15,
            **kw,
        )

    return spec


@pytest.fixture
def fake_services(monkeypatch: pytest.MonkeyPatch):
    table: dict = {}
    monkeypatch.setattr(registry, "build_spec", lambda name, ctx: table[name](ctx))
    return table


def test_up_records_and_down_stops_exactly_those_processes(lab_tmp: Path, fake_services):
    fake_services["web"] = http_service("web")
    p = Platform(services=["web"], state_dir=lab_tmp / "state", free_ports=True)
    rep = p.up()
    assert list(rep.started) == ["web"] and rep.already == []
    rec = p.record("web")
    saved = json.loads((lab_tmp / "state" / "platform.json").read_text())["services"]["web"]
    assert saved["pid"] == rec.pid and saved["ports"] == rec.ports and Path(saved["log"]).exists()
    assert psutil.Process(rec.pid).is_running()

    again = Platform(services=["web"], state_dir=lab_tmp / "state", free_ports=True).up()
    assert again.started == {} and again.already == ["web"]
    assert p.record("web").pid == rec.pid  # nothing started twice

    assert p.down() == ["web"]
    assert not psutil.pid_exists(rec.pid) or psutil.Process(rec.pid).status() == psutil.STATUS_ZOMBIE
    assert status(lab_tmp / "state") == []


def test_port_in_use_is_a_clear_error_and_starts_nothing(lab_tmp: Path, fake_services):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        busy = s.getsockname()[1]
        fake_services["web"] = http_service("web", port_default=busy)
        with pytest.raises(PlatformError, match=rf"service web: port {busy} \(http\) on 127.0.0.1 is already in use"):
            Platform(services=["web"], state_dir=lab_tmp / "state").up()
    assert status(lab_tmp / "state") == []


def test_missing_binary_is_named(lab_tmp: Path, fake_services):
    fake_services["web"] = http_service("web", argv=["/nonexistent/tritonserver"])
    with pytest.raises(PlatformError, match="service web: binary '/nonexistent/tritonserver' not found"):
        Platform(services=["web"], state_dir=lab_tmp / "state", free_ports=True).up()


def test_exit_during_start_shows_the_log_tail(lab_tmp: Path, fake_services):
    argv = [sys.executable, "-c", "print('model repository is broken', flush=True); raise SystemExit(3)"]
    fake_services["web"] = http_service("web", argv=argv)
    with pytest.raises(PlatformError, match=r"(?s)service web: exited during start.*model repository is broken"):
        Platform(services=["web"], state_dir=lab_tmp / "state", free_ports=True).up()
    assert status(lab_tmp / "state") == []


def test_supervisor_restarts_a_killed_service_and_counts(lab_tmp: Path, fake_services):
    fake_services["web"] = http_service("web")
    with Platform(services=["web"], state_dir=lab_tmp / "state", free_ports=True, supervise=True) as p:
        first = p.record("web")
        os.kill(first.pid, signal.SIGKILL)
        deadline = time.monotonic() + 30
        while p.restarts("web") == 0 and time.monotonic() < deadline:
            time.sleep(0.1)
        rec = p.record("web")
        assert rec.restarts == 1 and rec.pid != first.pid and rec.ports == first.ports
    assert not psutil.pid_exists(rec.pid) or psutil.Process(rec.pid).status() == psutil.STATUS_ZOMBIE


def test_dependencies_start_first_and_cycles_are_rejected(lab_tmp: Path, fake_services):
    fake_services["a"] = http_service("a", depends_on=("b",))
    fake_services["b"] = http_service("b")
    with Platform(services=["a", "b"], state_dir=lab_tmp / "state", free_ports=True) as p:
        assert p.record("b").started_at <= p.record("a").started_at
    fake_services["b"] = http_service("b", depends_on=("a",))
    with pytest.raises(PlatformError, match="dependency cycle"):
        Platform(services=["a", "b"], state_dir=lab_tmp / "state", free_ports=True).up()
    with pytest.raises(PlatformError, match="depends_on 'b'"):
        Platform(services=["a"], state_dir=lab_tmp / "state", free_ports=True).up()


def test_weeks_yaml_maps_every_week_to_known_services():
    for week in range(1, 14):
        assert "triton" in registry.week_services(week)
    with pytest.raises(PlatformError, match="week 14: allowed 1-13"):
        registry.week_services(14)


def test_ports_are_shared_between_services_by_name(tmp_path: Path):
    ctx = PlatformContext(week=1, state_dir=tmp_path, free_ports=True)
    assert ctx.port("triton.metrics", 8002) == ctx.port("triton.metrics", 9999)
    assert PlatformContext(week=1, state_dir=tmp_path).port("triton.http", 8000) == 8000


def test_triton_service_takes_its_model_repository_as_an_option(tmp_path: Path):
    """The control plane builds no repository itself: `lab up` (or the caller) passes one; none or a bad path fails."""
    from ailab import host
    from ailab.local.services import triton

    if host.tritonserver_binary() is None:
        pytest.skip("tritonserver not installed (nvidia-pytriton)")
    ctx = PlatformContext(week=1, state_dir=tmp_path, free_ports=True)
    with pytest.raises(PlatformError, match=r"option triton\.model_repository is not set"):
        triton.spec(ctx)
    ctx.options["triton.model_repository"] = tmp_path / "missing"
    with pytest.raises(PlatformError, match="is not a directory"):
        triton.spec(ctx)
    (tmp_path / "repo").mkdir()
    ctx.options["triton.model_repository"] = tmp_path / "repo"
    spec = triton.spec(ctx)
    assert f"--model-repository={tmp_path / 'repo'}" in spec.argv
