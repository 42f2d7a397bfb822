"""Kubernetes pod-discovery relabeling run by the real Prometheus on pod metadata fed through file_sd (d13.e3).

Discovery itself needs an API server; the relabel_configs are the committed dashboards/prometheus/kubernetes-sd.yaml.
"""

from __future__ import annotations

import json
import time

import yaml

from ailab.contract import Context, Output, Substitute, Table
from workloads.observability import rulefiles
from workloads.observability.stack import observed_platform

FILE_SD_PODS = Substitute(
    instead_of="Kubernetes pod discovery in a cluster",
    used="the pod metadata discovery would attach, fed to the real Prometheus through file_sd",
    why="no Kubernetes API server here, and Debian's Prometheus is built without Kubernetes discovery",
)
PODS = [  # (pod, app label, container port name, prometheus.io annotations, address role)
    ("triton-0", "triton", "metrics", {}, "triton"),
    ("dcgm-exporter-abc", "dcgm-exporter", "metrics", {}, "closed"),
    ("node-exporter-xyz", "node-exporter", "metrics", {}, "closed"),
    ("lab-exporter-1", "lab-exporter", "http", {"scrape": "true", "port": "PORT", "path": "/metrics"}, "exporter"),
    ("redis-0", "redis", "redis", {}, "closed"),
    ("batch-job", "batch", "http", {"scrape": "false"}, "closed"),
]


def pod_targets(s_ports: dict[str, int]) -> list[dict]:
    """file_sd target groups carrying the labels Kubernetes pod discovery would attach."""
    groups = []
    for pod, app, port_name, ann, role in PODS:
        port = s_ports.get(role, 1)  # port 1: nothing listens, the target shows as down
        labels = {
            "__meta_kubernetes_namespace": "lab",
            "__meta_kubernetes_pod_name": pod,
            "__meta_kubernetes_pod_node_name": "gpu-node-1",
            "__meta_kubernetes_pod_label_app_kubernetes_io_name": app,
            "__meta_kubernetes_pod_container_port_name": port_name,
        }
        for k, v in ann.items():
            labels[f"__meta_kubernetes_pod_annotation_prometheus_io_{k}"] = str(port) if v == "PORT" else v
        groups.append({"targets": [f"127.0.0.1:{port if not ann.get('port') else 9}"], "labels": labels})
    return groups


def k8s_relabeling(ctx: Context) -> Output:
    """The Kubernetes pod-discovery relabeling rules, run by the real Prometheus on pod metadata."""
    t = Table.of(
        "pods through the relabeling rules",
        [("pod", ""), ("job", ""), ("kept", ""), ("scraped address", ""), ("labels after relabeling", "")],
        caption="Pod metadata (the __meta_kubernetes_* labels pod discovery attaches) is fed through file_sd to each "
        "job of dashboards/prometheus/kubernetes-sd.yaml; Prometheus applies the relabel_configs itself.",
    )
    with observed_platform(ctx.platform, ctx.workdir / "stack", services=["triton", "exporter", "prometheus"]) as s:
        ports = {"triton": s.platform.port("triton", "metrics"), "exporter": s.platform.port("exporter", "metrics")}
        sd_dir = ctx.workdir / "sd"
        sd_dir.mkdir(parents=True, exist_ok=True)
        (sd_dir / "pods.json").write_text(json.dumps(pod_targets(ports)))
        jobs = []
        for job in rulefiles.load(rulefiles.KUBERNETES_SD)["scrape_configs"]:
            job = {**job, "job_name": f"k8s-{job['job_name']}"}
            job.pop("kubernetes_sd_configs")
            job["file_sd_configs"] = [{"files": [str(sd_dir / "pods.json")]}]
            jobs.append(job)
        cfg_path = s.rules_dir.parent / "prometheus.yaml"
        cfg = yaml.safe_load(cfg_path.read_text())
        cfg["scrape_configs"] += jobs
        cfg_path.write_text(yaml.safe_dump(cfg))
        s.prom.reload()
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            data = s.prom.get("/api/v1/targets", {"state": "any"})
            active = [a for a in data["activeTargets"] if a["labels"]["job"] != "loadgen"]
            if any(a["scrapePool"].startswith("k8s-") for a in active):
                break
            time.sleep(0.5)
        kept = {}
        for a in data["activeTargets"]:
            if a["scrapePool"].startswith("k8s-"):
                kept[(a["discoveredLabels"]["__meta_kubernetes_pod_name"], a["scrapePool"])] = a
        for pod, *_ in PODS:
            hits = [(pool, a) for (p, pool), a in kept.items() if p == pod]
            if not hits:
                t.add(pod, "-", "dropped", "-", "-")
            for pool, a in hits:
                lab = {k: v for k, v in a["labels"].items() if k not in ("instance",)}
                t.add(pod, lab.get("job", pool), "yes", a["scrapeUrl"], json.dumps(lab, sort_keys=True))
    return Output(
        tables=[t],
        notes=[
            "Kubernetes discovery itself needs an API server (none here, and Debian's Prometheus is built without "
            "it); the relabeling is exactly what a cluster Prometheus would run on the same labels.",
            "Expected: triton, dcgm-exporter and node-exporter pods kept by their app label and port name; the "
            "annotated lab-exporter pod kept with its annotated port; redis and the scrape=false pod dropped.",
        ],
        substitute=FILE_SD_PODS,
    )
