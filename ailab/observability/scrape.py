"""Prometheus configuration: static scrape jobs for a lab node / `lab up`, and Kubernetes pod discovery."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ailab.contract.durations import SCRAPE_INTERVALS

# Default ports of each exporter: Triton's metrics port, DCGM exporter, node exporter, the lab's own exporters.
PORTS = {"triton": 8002, "dcgm": 9400, "node": 9100, "lab-exporter": 9108, "loadgen": 9109}


@dataclass
class Targets:
    """Where each job's targets are; an empty list leaves the job out (e.g. no DCGM on a CPU host)."""

    jobs: dict[str, list[str]] = field(default_factory=dict)
    file_sd: dict[str, str] = field(default_factory=dict)  # job -> glob of file_sd JSON files (load generators)
    alertmanagers: list[str] = field(default_factory=list)
    rule_files: list[str] = field(default_factory=lambda: ["rules/*.yaml"])


def lab_node_targets(host: str = "localhost") -> Targets:
    """Every exporter of one lab node at its default port (the committed reference config)."""
    return Targets(
        jobs={job: [f"{host}:{port}"] for job, port in PORTS.items() if job != "loadgen"},
        file_sd={"loadgen": "targets/loadgen-*.json"},
        alertmanagers=[f"{host}:9093"],
    )


def static_config(t: Targets, scrape_interval: str = "15s", evaluation_interval: str = "") -> dict[str, Any]:
    """prometheus.yml with one static job per exporter, the rule files and the Alertmanagers."""
    if scrape_interval not in SCRAPE_INTERVALS:
        raise ValueError(f"scrape_interval {scrape_interval!r}: allowed {', '.join(SCRAPE_INTERVALS)}")
    jobs: list[dict[str, Any]] = []
    for job, targets in t.jobs.items():
        if targets:
            jobs.append({"job_name": job, "static_configs": [{"targets": list(targets)}]})
    for job, pattern in t.file_sd.items():
        jobs.append({"job_name": job, "file_sd_configs": [{"files": [pattern], "refresh_interval": "5s"}]})
    cfg: dict[str, Any] = {
        "global": {
            "scrape_interval": scrape_interval,
            "evaluation_interval": evaluation_interval or scrape_interval,
            "external_labels": {"lab": "ailab"},
        },
        "rule_files": list(t.rule_files),
        "scrape_configs": jobs,
    }
    if t.alertmanagers:
        cfg["alerting"] = {"alertmanagers": [{"static_configs": [{"targets": list(t.alertmanagers)}]}]}
    return cfg


def _pod_job(name: str, keep: list[dict[str, Any]]) -> dict[str, Any]:
    """A pod-discovery job: `keep` selects the pods, then the common relabeling names the target."""
    return {
        "job_name": name,
        "kubernetes_sd_configs": [{"role": "pod"}],
        "relabel_configs": [
            *keep,
            # the Kubernetes node a pod runs on becomes `node` (what node:gpu_utilization:avg_percent groups by)
            {"source_labels": ["__meta_kubernetes_pod_node_name"], "target_label": "node"},
            {"source_labels": ["__meta_kubernetes_namespace"], "target_label": "namespace"},
            {"source_labels": ["__meta_kubernetes_pod_name"], "target_label": "pod"},
        ],
    }


def kubernetes_config() -> dict[str, Any]:
    """Scrape jobs that find Triton, DCGM exporter, node exporter and annotated pods through the Kubernetes API."""
    annotated = [
        {"source_labels": ["__meta_kubernetes_pod_annotation_prometheus_io_scrape"], "action": "keep", "regex": "true"},
        {"source_labels": ["__meta_kubernetes_pod_annotation_prometheus_io_path"], "action": "replace",
         "target_label": "__metrics_path__", "regex": "(.+)"},
        {"source_labels": ["__address__", "__meta_kubernetes_pod_annotation_prometheus_io_port"], "action": "replace",
         "regex": r"([^:]+)(?::\d+)?;(\d+)", "replacement": "$1:$2", "target_label": "__address__"},
        {"source_labels": ["__meta_kubernetes_pod_label_app_kubernetes_io_name"], "target_label": "job"},
    ]  # fmt: skip

    def by_port(app: str, port: str) -> list[dict[str, Any]]:
        return [
            {"source_labels": ["__meta_kubernetes_pod_label_app_kubernetes_io_name"], "action": "keep", "regex": app},
            {"source_labels": ["__meta_kubernetes_pod_container_port_name"], "action": "keep", "regex": port},
        ]

    return {
        "global": {"scrape_interval": "15s", "evaluation_interval": "15s"},
        "rule_files": ["rules/*.yaml"],
        "scrape_configs": [
            _pod_job("triton", by_port("triton", "metrics")),
            _pod_job("dcgm", by_port("dcgm-exporter", "metrics")),
            _pod_job("node", by_port("node-exporter", "metrics")),
            _pod_job("kubernetes-pods", annotated),
        ],
    }
