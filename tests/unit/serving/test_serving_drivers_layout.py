"""d32.e1's pinned CPU layout: the server's threads on one CPU, the drivers' (this process's) on another, and both
restored afterwards. A `sleep` process stands in for tritonserver: only its affinity is looked at."""

from __future__ import annotations

import os
import subprocess

import pytest

from workloads.serving.experiments.drivers import cpu_layout


@pytest.mark.skipif(len(os.sched_getaffinity(0)) < 2, reason="needs 2 CPUs")
def test_pinned_layout_separates_server_and_drivers_then_restores_both():
    cpus = sorted(os.sched_getaffinity(0))
    server = subprocess.Popen(["sleep", "30"])
    try:
        with cpu_layout("pinned", server.pid) as why_not:
            assert why_not == ""
            assert os.sched_getaffinity(server.pid) == {cpus[0]}
            assert os.sched_getaffinity(0) == {cpus[1]}
            child = subprocess.run(["python3", "-c", "import os; print(sorted(os.sched_getaffinity(0)))"],
                                   capture_output=True, text=True, check=True)  # fmt: skip
            assert child.stdout.strip() == str([cpus[1]])  # a driver started inside inherits the drivers' CPU
        assert os.sched_getaffinity(server.pid) == set(cpus)
        assert os.sched_getaffinity(0) == set(cpus)
    finally:
        server.kill()
        server.wait()


def test_shared_layout_changes_nothing():
    before = os.sched_getaffinity(0)
    with cpu_layout("shared", os.getpid()) as why_not:
        assert why_not == "" and os.sched_getaffinity(0) == before
