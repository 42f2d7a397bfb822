"""What the k3s server container must look like after ansible/gpu_hosts.yml (CPU-only node, no k3s binary in CI)."""

import json

testinfra_hosts = ["podman://ailab-k3s-server"]


def test_node_exporter_serves_metrics_on_9100(host):
    assert host.package("prometheus-node-exporter").is_installed
    assert host.service("prometheus-node-exporter").is_running
    assert host.socket("tcp://0.0.0.0:9100").is_listening
    assert (
        "--collector.textfile.directory=/var/lib/prometheus/node-exporter"
        in host.file("/etc/default/prometheus-node-exporter").content_string
    )


def test_k3s_server_config_sets_kubelet_topology_and_cpu_manager(host):
    cfg = host.file("/etc/rancher/k3s/config.yaml")
    assert cfg.mode == 0o600
    text = cfg.content_string
    assert "token-file: /etc/rancher/k3s/token" in text
    assert "topology-manager-policy=single-numa-node" in text
    assert "cpu-manager-policy=static" in text
    assert "reserved-cpus=0" in text
    assert "- traefik" in text
    assert "server:" not in text  # that key is for agents


def test_k3s_token_is_root_only(host):
    token = host.file("/etc/rancher/k3s/token")
    assert token.mode == 0o600 and token.user == "root"


def test_k3s_server_unit_is_enabled(host):
    unit = host.file("/etc/systemd/system/k3s.service").content_string
    assert "ExecStart=/usr/local/bin/k3s server --config /etc/rancher/k3s/config.yaml" in unit
    assert host.service("k3s").is_enabled


def test_nvidia_runtime_class_is_auto_applied(host):
    manifest = host.file("/var/lib/rancher/k3s/server/manifests/nvidia-runtimeclass.yaml").content_string
    assert "kind: RuntimeClass" in manifest and "handler: nvidia" in manifest


def test_topology_report_lists_numa_nodes_and_no_gpu(host):
    report = json.loads(host.file("/var/lib/ailab/gpu_topology.json").content_string)
    assert report["gpus"] == []
    assert report["numa_nodes"] and report["numa_nodes"][0]["cpulist"]
    assert "available:" in report["numactl_hardware"]


def test_validation_report_is_ok_with_gpu_checks_skipped(host):
    report = json.loads(host.file("/var/lib/ailab/lab_validate.json").content_string)
    assert report["ok"] is True
    by_name = {c["name"]: c for c in report["checks"]}
    assert by_name["node_exporter"]["status"] == "pass"
    assert by_name["driver_loaded"]["status"] == "skip"
    assert "no NVIDIA GPU" in by_name["driver_loaded"]["detail"]
