"""free_port: the kernel's pick, never a port this process already handed out.

The duplicate case replaces the kernel's probe with a scripted sequence: the kernel only repeats a freed port by
chance (CI hit it once: HAProxy's JWT frontend was given the port the same platform's tritonserver had bound)."""

from __future__ import annotations

import json
import re
import socket
from pathlib import Path

import pytest

from ailab.contract import ports
from ailab.local.spec import PlatformContext


@pytest.fixture
def fresh(monkeypatch):
    monkeypatch.setattr(ports, "_issued", type(ports._issued)(maxlen=ports._REMEMBER))
    monkeypatch.setattr(ports, "_issued_set", set())


def test_a_port_the_kernel_offers_again_is_skipped(fresh, monkeypatch):
    offers = iter([40001, 40002, 40001, 40002, 40003])
    monkeypatch.setattr(ports, "_probe", lambda: next(offers))
    assert [ports.free_port() for _ in range(3)] == [40001, 40002, 40003]


def test_gives_up_with_a_clear_error_when_the_kernel_only_offers_issued_ports(fresh, monkeypatch):
    monkeypatch.setattr(ports, "_probe", lambda: 40001)
    assert ports.free_port() == 40001
    with pytest.raises(OSError, match=re.escape("no free TCP port on 127.0.0.1")):
        ports.free_port()


def test_forgets_the_oldest_port_beyond_its_memory(fresh, monkeypatch):
    monkeypatch.setattr(ports, "_issued", type(ports._issued)(maxlen=2))
    monkeypatch.setattr(ports, "_REMEMBER", 2)
    offers = iter([40001, 40002, 40003, 40001])
    monkeypatch.setattr(ports, "_probe", lambda: next(offers))
    assert [ports.free_port() for _ in range(4)] == [40001, 40002, 40003, 40001]


def test_real_ports_are_distinct_and_bindable(fresh):
    got = [ports.free_port() for _ in range(200)]
    assert len(set(got)) == len(got)
    with socket.socket() as s:
        s.bind(("127.0.0.1", got[-1]))


def test_a_platform_context_never_gives_two_roles_one_port(fresh):
    ctx = PlatformContext(week=1, state_dir=None, free_ports=True)  # type: ignore[arg-type]
    names = [f"svc{i}.role{j}" for i in range(20) for j in range(4)]
    got = [ctx.port(n, 0) for n in names]
    assert len(set(got)) == len(names)
    assert ctx.port("svc0.role0", 0) == got[0]  # fixed once chosen


def test_a_reserved_port_lies_below_the_kernels_ephemeral_range_and_is_free(fresh) -> None:
    """A port named before anything binds it must not be one the kernel hands to bind(0) or an outgoing connection."""
    floor = int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    got = {ports.reserved_port() for _ in range(20)}
    assert len(got) == 20, "a reserved port was handed out twice"
    for port in got:
        assert 20000 <= port < floor
        with socket.socket() as s:
            s.bind((ports.HOST, port))  # free: nothing bound it meanwhile


def test_reserving_without_room_below_the_ephemeral_range_says_so(fresh, monkeypatch) -> None:
    monkeypatch.setattr(ports, "_ephemeral_floor", lambda: 20010)
    with pytest.raises(OSError, match="the kernel's ephemeral range starts at 20010"):
        ports.reserved_port()


def test_the_spare_target_is_claimed_once(tmp_path) -> None:
    assert ports.claim_spare_target(tmp_path) is None  # none written
    ports.write_spare_target(tmp_path / "targets", 23456, "triton")
    written = json.loads((tmp_path / "targets" / ports.SPARE_TARGET).read_text())
    assert written == [{"targets": ["127.0.0.1:23456"], "labels": {"job": "triton"}}]
    assert ports.claim_spare_target(tmp_path / "targets") == 23456
    assert ports.claim_spare_target(tmp_path / "targets") is None, "a claimed spare was handed out again"
