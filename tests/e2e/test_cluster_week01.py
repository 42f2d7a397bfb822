"""End to end: `pulumi up -s week01` on a kind cluster with GPUs, then check the cluster really serves.

Needs the Pulumi CLI, kind, kubectl, Docker with the NVIDIA runtime and a GPU (docs/cluster.md); none of
them exist on the development machines or in CI, so it skips there with the reason.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from ailab.contract.paths import REPO_ROOT
from ailab.platform.hostcheck import HostProbe, gpu_runtime_problems

pytestmark = pytest.mark.cluster

MISSING = [b for b in ("pulumi", "kind", "kubectl", "docker", "nvidia-smi") if shutil.which(b) is None]
REASON = (
    f"needs {', '.join(MISSING)} (a workstation with Docker + NVIDIA runtime, kind and the Pulumi CLI)"
    if MISSING
    else "; ".join(gpu_runtime_problems(HostProbe()))
)


def sh(*cmd: str, env: dict[str, str] | None = None, timeout: int = 1800) -> str:
    return subprocess.run(
        cmd, cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=timeout, check=True
    ).stdout


def until(what: str, check, timeout_s: float = 900) -> None:
    """Poll `check` until it holds; fail naming `what` after timeout_s seconds."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            if check():
                return
        except (subprocess.CalledProcessError, OSError, ValueError):
            pass
        time.sleep(5)
    pytest.fail(f"{what}: not within {timeout_s:.0f} s")


@pytest.fixture(scope="module")
def week01(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    if REASON:
        pytest.skip(REASON)
    state = tmp_path_factory.mktemp("pulumi-state")
    env = {**os.environ, "PULUMI_BACKEND_URL": f"file://{state}", "PULUMI_CONFIG_PASSPHRASE": "e2e"}
    sh("pulumi", "stack", "select", "--create", "week01", env=env)
    try:
        sh("pulumi", "up", "--yes", "--skip-preview", "-s", "week01", env=env, timeout=3600)
        kubeconfig = Path(state) / "kubeconfig"
        kubeconfig.write_text(sh("kind", "get", "kubeconfig", "--name", "ailab"))
        yield {**env, "KUBECONFIG": str(kubeconfig)}
    finally:
        subprocess.run(
            ["pulumi", "destroy", "--yes", "-s", "week01"], cwd=REPO_ROOT, env=env, timeout=1800, check=False
        )


def kubectl(env: dict[str, str], *args: str) -> str:
    return sh("kubectl", *args, env=env, timeout=120)


def test_nodes_advertise_gpus(week01: dict[str, str]) -> None:
    def gpus() -> bool:
        nodes = json.loads(kubectl(week01, "get", "nodes", "-o", "json"))["items"]
        return any(int(n["status"].get("allocatable", {}).get("nvidia.com/gpu", "0")) > 0 for n in nodes)

    until("a node with allocatable nvidia.com/gpu", gpus)


def test_smoke_pod_sees_the_gpu(week01: dict[str, str]) -> None:
    until(
        "gpu-smoke-test Job complete",
        lambda: (
            kubectl(week01, "get", "job", "gpu-smoke-test", "-n", "ailab", "-o", "jsonpath={.status.succeeded}") == "1"
        ),
    )
    assert "GPU 0:" in kubectl(week01, "logs", "job/gpu-smoke-test", "-n", "ailab")


def _port_forward(env: dict[str, str], ns: str, svc: str, port: int, local: int) -> subprocess.Popen:
    return subprocess.Popen(
        ["kubectl", "port-forward", "-n", ns, f"svc/{svc}", f"{local}:{port}"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def test_triton_is_ready_through_its_service(week01: dict[str, str]) -> None:
    pf = _port_forward(week01, "ailab", "triton", 8000, 18000)
    try:
        until(
            "Triton /v2/health/ready through svc/triton",
            lambda: urllib.request.urlopen("http://127.0.0.1:18000/v2/health/ready", timeout=5).status == 200,
        )
    finally:
        pf.terminate()


def test_prometheus_scrapes_triton(week01: dict[str, str]) -> None:
    pf = _port_forward(week01, "monitoring", "kube-prometheus-stack-prometheus", 9090, 19090)
    url = "http://127.0.0.1:19090/api/v1/query?query=" + urllib.request.quote('up{service="triton"}')

    def up() -> bool:
        data = json.load(urllib.request.urlopen(url, timeout=5))["data"]["result"]
        return any(r["value"][1] == "1" for r in data)

    try:
        until("Prometheus target triton up", up)
    finally:
        pf.terminate()
