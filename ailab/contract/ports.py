"""Free TCP ports on 127.0.0.1 for the services and exporters the lab starts.

The kernel picks a free port for `bind(port 0)`, but nothing reserves it once the probe socket closes: two
probes in a row can get the same number, and the second service to bind it fails (CI saw HAProxy's JWT
frontend given the port the tritonserver of the same platform had just bound). So this process never hands out
a port it handed out before (the last `_REMEMBER` of them), whichever service or exporter asked.
"""

from __future__ import annotations

import socket
import threading
from collections import deque

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
            if len(_issued) == _REMEMBER:
                _issued_set.discard(_issued[0])
            _issued.append(port)
            _issued_set.add(port)
            return port
    raise OSError(f"no free TCP port on {HOST} that this process has not already handed out ({_TRIES} tries)")
