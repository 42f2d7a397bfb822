"""The collector as a service: health-checked start, a JSON line over its loopback TCP source stored as a record,
restart counted after a SIGKILL (tailing resumes from its persist file, nothing collected twice), clean stop."""

from __future__ import annotations

import json
import os
import signal
import socket
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from ailab.local import process
from ailab.local.platform import Platform
from ailab.local.services import syslogng

pytestmark = pytest.mark.integration


def _wait(fn: Callable[[], Any], timeout_s: float = 15) -> Any:
    deadline = time.monotonic() + timeout_s
    while not (got := fn()) and time.monotonic() < deadline:
        time.sleep(0.1)
    return got


def test_collector_lifecycle(tmp_path: Path) -> None:
    tailed = tmp_path / "logs" / "prometheus.log"
    tailed.parent.mkdir(parents=True)
    tailed.write_text('ts=2026-12-02T01:00:00Z caller=main.go level=warn msg="first"\n')
    opts = {"syslogng.sources": ["prometheus"]}
    with Platform(services=["syslogng"], state_dir=tmp_path, free_ports=True, options=opts, supervise=True) as p:
        rec = p.record("syslogng")
        records = Path(rec.info["records"])
        assert syslogng.healthy(Path(rec.info["control"]))
        first = _wait(lambda: syslogng.query(records, service="prometheus"))
        assert [(r["level"], r["message"].endswith('msg="first"')) for r in first] == [("warn", True)]
        with socket.create_connection(("127.0.0.1", p.port("syslogng", "tcp")), timeout=5) as s:
            line = {"service": "loadgen", "model": "mlp", "status": 503, "message": "over capacity"}
            s.sendall((json.dumps(line) + "\n").encode())
        sent = _wait(lambda: syslogng.query(records, service="loadgen"))
        assert [(r["model"], r["status"], r["message"]) for r in sent] == [("mlp", 503, "over capacity")]

        os.kill(rec.pid, signal.SIGKILL)
        assert _wait(lambda: p.restarts("syslogng") == 1, 30)
        with open(tailed, "a") as f:
            f.write('ts=2026-12-02T01:00:01Z caller=main.go level=info msg="second"\n')
        both = _wait(lambda: len(syslogng.query(records, service="prometheus")) >= 2)
        assert both
        time.sleep(1)  # a line collected twice would show up by now
        msgs = [r["message"] for r in syslogng.query(records, service="prometheus")]
        assert len(msgs) == 2 and msgs[0].endswith('msg="first"') and msgs[1].endswith('msg="second"')
        last = p.record("syslogng")
    assert not process.alive(last.pid, last.start_ticks)  # stopped with SIGTERM, nothing left behind
