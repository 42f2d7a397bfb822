"""A generator worker's result reaches the parent whole, however late the parent reads it (no server needed)."""

from __future__ import annotations

import subprocess
import sys
import time

import pytest

CHILD = """
import asyncio, uvloop
from workloads.serving.workers import _write_all
async def tick(): await asyncio.sleep(0.01)
uvloop.run(tick())  # what a worker's HTTP run does before it writes its result
_write_all(1, b"x" * 300_000)
"""


def test_a_result_bigger_than_the_pipe_arrives_whole_after_uvloop_ran():
    pytest.importorskip("uvloop")
    p = subprocess.Popen([sys.executable, "-c", CHILD], stdout=subprocess.PIPE)
    time.sleep(1.0)  # the parent is busy reading another worker: the pipe fills up
    out = p.stdout.read() if p.stdout else b""
    assert p.wait() == 0
    assert len(out) == 300_000
