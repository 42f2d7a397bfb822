"""`lab up/status/down/bench` and the supervisor against a real tritonserver, as a user runs them."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

from ailab.local.platform import Platform
from ailab.local.registry import PlatformError
from workloads.serving import perf
from workloads.serving.client import Client

pytestmark = pytest.mark.integration
LAB = [sys.executable, "-m", "ailab.cli"]


def lab(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*LAB, *args], env=env, capture_output=True, text=True, timeout=300, check=False)


def running(pid: int) -> bool:
    """Alive and not a zombie (the sandbox's init may reap late)."""
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def test_lab_up_twice_status_and_down(lab_tmp: Path):
    env = {**os.environ}
    first = lab("up", "--service", "triton", "--free-ports", "--json", env=env)
    assert first.returncode == 0, first.stderr
    rep = json.loads(first.stdout.splitlines()[-1])
    assert list(rep["started"]) == ["triton"]
    try:
        again = json.loads(lab("up", "--service", "triton", "--free-ports", "--json", env=env).stdout.splitlines()[-1])
        assert again["started"] == {} and again["already_running"] == ["triton"]
        rows = json.loads(lab("status", "--json", env=env).stdout)
        (row,) = [r for r in rows if r["name"] == "triton"]
        assert row["state"] == "running" and set(row["ports"]) == {"http", "grpc", "metrics"}
        with Client(f"127.0.0.1:{row['ports']['http']}", "http") as c:
            assert c.is_ready("mlp") and c.is_ready("mlp_nobatch")  # the week's models
    finally:
        down = lab("down", env=env)
    assert down.returncode == 0 and "stopped triton" in down.stdout
    assert not running(row["pid"])


def test_lab_up_rejects_bad_input_before_starting(lab_tmp: Path):
    r = lab("up", "--week", "14", env={**os.environ})
    assert r.returncode == 2 and "--week 14: allowed 1-13" in r.stderr
    r = lab("up", "--service", "nginx", env={**os.environ})
    assert r.returncode == 2 and "--service nginx" in r.stderr
    assert not (lab_tmp / "state" / "platform.json").exists()


def test_supervisor_restarts_a_killed_tritonserver(lab_tmp: Path, triton):
    opts = {
        "triton.model_repository": triton.repo,
        "triton.model_control_mode": "explicit",
        "triton.load_models": ["mlp"],
    }
    with Platform(services=["triton"], state_dir=lab_tmp / "sup", free_ports=True, options=opts, supervise=True) as p:
        victim = p.record("triton").pid
        os.kill(victim, signal.SIGKILL)
        deadline = time.monotonic() + 120
        while p.restarts("triton") == 0 and time.monotonic() < deadline:
            time.sleep(0.2)
        assert p.restarts("triton") == 1 and p.record("triton").pid != victim
        with Client(p.address("triton", "grpc"), "grpc") as c:
            assert c.is_ready("mlp")


def test_perf_analyzer_and_lab_bench_side_by_side(triton):
    r = perf.run(triton.address("grpc"), "mlp", "grpc", concurrency=2, request_count=50)
    assert r.throughput_rps > 0 and 0 < r.p50_ms <= r.p99_ms
    out = lab(
        "bench",
        "--url",
        triton.address("grpc"),
        "--metrics-url",
        triton.metrics_url,
        "--driver",
        "both",
        "--concurrency",
        "2",
        "--requests",
        "50",
        "--warmup",
        "0.2",
        "--json",
        env={**os.environ},
    )
    assert out.returncode == 0, out.stderr
    res = json.loads(out.stdout)
    assert res["lab"]["ok"] == 50 and res["perf_analyzer"]["throughput_rps"] > 0
    bad = lab("bench", "--url", triton.address("grpc"), "--protocol", "udp", env={**os.environ})
    assert bad.returncode == 2 and "--protocol 'udp': allowed grpc, http" in bad.stderr


def test_a_server_that_exits_during_start_reports_its_log(lab_tmp: Path, triton):
    """A model whose model.py cannot even be imported makes tritonserver exit; the error carries its log."""
    import shutil

    repo = lab_tmp / "broken"
    shutil.copytree(triton.repo / "mlp_nobatch", repo / "broken_model")
    (repo / "broken_model" / "config.pbtxt").write_text(
        (repo / "broken_model" / "config.pbtxt").read_text().replace('"mlp_nobatch"', '"broken_model"')
    )
    (repo / "broken_model" / "1" / "model.py").write_text("raise ImportError('deliberately broken model')\n")
    opts = {"triton.model_repository": repo}
    with pytest.raises(PlatformError) as exc:
        Platform(services=["triton"], state_dir=lab_tmp / "st", free_ports=True, options=opts).up()
    msg = str(exc.value)
    assert "service triton: exited during start" in msg and "broken_model" in msg
