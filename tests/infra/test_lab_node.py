"""What every lab node (GPU node or k3s server) must look like: node exporter and k3s (real hosts only).

Env: AILAB_K3S_SERVER (e.g. ssh://k3s-server-1) lets an agent's test ask the server whether the node is Ready.
"""

from __future__ import annotations

import os

import pytest
import testinfra


@pytest.mark.component("node_exporter")
@pytest.mark.service("prometheus-node-exporter")
def test_node_exporter_serves_metrics_on_9100(host):
    assert host.service("prometheus-node-exporter").is_running
    assert host.socket("tcp://9100").is_listening


@pytest.mark.component("k3s")
@pytest.mark.service("k3s")
@pytest.mark.service("k3s-agent")
def test_k3s_service_runs(host):
    server = host.file("/etc/systemd/system/k3s.service").exists
    assert host.service("k3s" if server else "k3s-agent").is_running


@pytest.mark.component("k3s")
@pytest.mark.service("k3s")
@pytest.mark.service("k3s-agent")
def test_k3s_node_is_ready(host):
    name = host.check_output("hostname")
    if host.file("/etc/rancher/k3s/k3s.yaml").exists:
        api = host
    elif os.environ.get("AILAB_K3S_SERVER"):
        api = testinfra.get_host(os.environ["AILAB_K3S_SERVER"], sudo=True)
    else:
        pytest.skip("an agent has no kubeconfig: set AILAB_K3S_SERVER=ssh://<server> to ask the server")
    out = api.run(f"k3s kubectl get node {name} -o jsonpath='{{.status.conditions[?(@.type==\"Ready\")].status}}'")
    assert out.rc == 0, out.stderr
    assert out.stdout.strip() == "True"


@pytest.mark.component("k3s")
@pytest.mark.service("k3s")
@pytest.mark.service("k3s-agent")
def test_k3s_has_the_nvidia_runtime_class(host):
    if not host.file("/etc/rancher/k3s/k3s.yaml").exists:
        pytest.skip("the RuntimeClass is checked on the server")
    assert host.run("k3s kubectl get runtimeclass nvidia").rc == 0
