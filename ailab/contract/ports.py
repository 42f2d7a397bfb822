"""Free TCP ports on 127.0.0.1 for the services and exporters the lab starts.

The kernel picks a free port for `bind(port 0)`, but nothing reserves it once the probe socket closes: two
probes in a row can get the same number, and the second service to bind it fails (CI saw HAProxy's JWT
frontend given the port the tritonserver of the same platform had just bound). So this process never hands out
a port it handed out before (the last `_REMEMBER` of them), whichever service or exporter asked.
"""

from __future__ import annotations

import json
import os
import random
import socket
import threading
from collections import deque
from pathlib import Path

HOST = "127.0.0.1"  # every local service binds loopback only
_REMEMBER = 4096  # of ~28k ephemeral ports: far more than one process starts, few enough to never run out
_TRIES = 64
_issued: deque[int] = deque(maxlen=_REMEMBER)
_issued_set: set[int] = set()
_lock = threading.Lock()


def _probe() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


def free_port() -> int:
    """An unused TCP port on 127.0.0.1, chosen by the kernel, that this process has not handed out recently."""
    with _lock:
        for _ in range(_TRIES):
            port = _probe()
            if port in _issued_set:
                continue
            return _issue(port)
    raise OSError(f"no free TCP port on {HOST} that this process has not already handed out ({_TRIES} tries)")


def _issue(port: int) -> int:
    """Remember `port` as handed out (the oldest of _REMEMBER forgotten); the caller holds _lock."""
    if len(_issued) == _REMEMBER:
        _issued_set.discard(_issued[0])
    _issued.append(port)
    _issued_set.add(port)
    return port


def _ephemeral_floor() -> int:
    """The lowest port the kernel hands out for bind(port 0) and outgoing connections (32768 if unreadable)."""
    try:
        return int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768


def reserved_port(low: int = 20000) -> int:
    """A free TCP port on 127.0.0.1 between `low` and the kernel's ephemeral range, never handed out before by
    this process: a port named before anything binds it (a Prometheus target written before its server starts).
    The kernel never picks it for bind(0) or for an outgoing connection's local port, so it stays free until the
    service it was reserved for binds it; free_port() cannot promise that for its kernel-chosen ports."""
    high = _ephemeral_floor()
    if high - low < _TRIES:
        raise OSError(f"no reservable TCP port on {HOST}: the kernel's ephemeral range starts at {high}")
    rng = random.Random()
    with _lock:
        for _ in range(_TRIES):
            port = rng.randrange(low, high)
            if port in _issued_set:
                continue
            try:
                with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
                    s.bind((HOST, port))
            except OSError:
                continue
            return _issue(port)
    raise OSError(f"no free TCP port on {HOST} in {low}-{high - 1} ({_TRIES} tries)")


# A quick run's pool may start a Prometheus when the run begins (ailab/local/pool.py) with one spare file_sd target
# already in it: a reserved port that nothing binds yet. An experiment borrowing that Prometheus claims the spare
# and starts its server's metrics endpoint on that port, so the first scrape comes within one interval of the
# server's start instead of after Prometheus' next target-discovery tick (every 5 s in 2.42).
SPARE_TARGET = "loadgen-spare.json"  # in the Prometheus' file_sd directory (its glob: loadgen-*.json)
SPARE_CLAIMED = "spare.claimed"  # beside it, created once by whoever claims it (outside the glob)


def write_spare_target(targets_dir: Path, port: int, job: str) -> None:
    """The spare target: 127.0.0.1:`port` with job label `job`."""
    targets_dir.mkdir(parents=True, exist_ok=True)
    (targets_dir / SPARE_TARGET).write_text(json.dumps([{"targets": [f"{HOST}:{port}"], "labels": {"job": job}}]))


def claim_spare_target(targets_dir: Path) -> int | None:
    """The spare target's port, claimed for the caller (None when there is none or it was claimed before)."""
    spare = targets_dir / SPARE_TARGET
    if not spare.is_file():
        return None
    try:
        os.close(os.open(targets_dir / SPARE_CLAIMED, os.O_CREAT | os.O_EXCL | os.O_WRONLY))
    except FileExistsError:
        return None
    return int(json.loads(spare.read_text())[0]["targets"][0].rsplit(":", 1)[1])
