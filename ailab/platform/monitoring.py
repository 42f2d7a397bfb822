"""Monitoring component: kube-prometheus-stack, DCGM exporter (:9400), the lab's exporter, ServiceMonitors,
the repository's dashboards and rules (read from dashboards/ at build time), federation and Thanos."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml

from ailab.contract import facts
from ailab.platform.config import StackSettings
from ailab.platform.gpu import with_runtime_class
from ailab.platform.model import (
    GPU_TOLERATIONS,
    HelmRelease,
    Plan,
    PlanInputs,
    meta,
    metrics_service,
    resources,
    secret_ref,
    workload,
)
from ailab.platform.podsecurity import HOST_ACCESS, LAB_UID, SYSTEM_NS, container_context, restricted_pod
from ailab.platform.versions import IMAGES

NS = "monitoring"
DCGM_PORT = 9400
EXPORTER = "ailab-exporter"
EXPORTER_PORT = 9108  # workloads/images/exporter: python -m workloads.exporters --port 9108
PROMETHEUS_UID = 65534  # the Prometheus image's own user (nobody)
DASHBOARD_LABEL = "grafana_dashboard"
THANOS_SECRET = "thanos-objstore"


def _name(stem: str) -> str:
    return re.sub(r"[^a-z0-9-]+", "-", stem.lower()).strip("-")[:50]


def dashboard_configmaps(dashboards_dir: Path) -> list[dict[str, Any]]:
    """One ConfigMap per dashboards/grafana/*.json, labelled for the Grafana sidecar."""
    return [
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": meta(f"dashboard-{_name(f.stem)}", NS, {DASHBOARD_LABEL: "1"}),
            "data": {f.name: f.read_text()},
        }
        for f in sorted((dashboards_dir / "grafana").glob("*.json"))
    ]


def prometheus_rules(dashboards_dir: Path) -> list[dict[str, Any]]:
    """One PrometheusRule per dashboards/prometheus/rules/*.yaml (Prometheus rule files with top-level groups)."""
    out = []
    for f in sorted((dashboards_dir / "prometheus" / "rules").glob("*.y*ml")):
        doc = yaml.safe_load(f.read_text()) or {}
        if not doc.get("groups"):
            raise ValueError(f"{f}: a Prometheus rule file needs top-level `groups:`")
        out.append(
            {
                "apiVersion": "monitoring.coreos.com/v1",
                "kind": "PrometheusRule",
                "metadata": meta(f"rules-{_name(f.stem)}", NS),
                "spec": {"groups": doc["groups"]},
            }
        )
    return out


def stack_release(s: StackSettings) -> HelmRelease:
    """kube-prometheus-stack that picks up every ServiceMonitor/PodMonitor/PrometheusRule, not only its own."""
    spec: dict[str, Any] = {
        "serviceMonitorSelectorNilUsesHelmValues": False,
        "podMonitorSelectorNilUsesHelmValues": False,
        "ruleSelectorNilUsesHelmValues": False,
        "retention": s.monitoring.retention,
        "externalLabels": {"cluster": f"{s.cluster.name}-week{s.week:02d}"},
    }
    # node-exporter needs the host (HOST_ACCESS): it runs in the node agents' namespace, not in monitoring
    values: dict[str, Any] = {
        "prometheus": {"prometheusSpec": spec},
        "prometheus-node-exporter": {"namespaceOverride": HOST_ACCESS["node-exporter"].namespace},
        "grafana": {
            "admin": {"existingSecret": "grafana-admin", "userKey": "admin-user", "passwordKey": "admin-password"},
            "sidecar": {
                "dashboards": {"enabled": True, "label": DASHBOARD_LABEL, "labelValue": "1", "searchNamespace": "ALL"}
            },
        },
    }
    if s.monitoring.thanos:
        spec["thanos"] = {"objectStorageConfig": {"existingSecret": {"name": THANOS_SECRET, "key": "objstore.yml"}}}
        values["prometheus"]["thanosService"] = {"enabled": True}
    return HelmRelease("kube-prometheus-stack", NS, values)


def service_monitor(name: str, ns: str, app: str, port: str) -> dict[str, Any]:
    return {
        "apiVersion": "monitoring.coreos.com/v1",
        "kind": "ServiceMonitor",
        "metadata": meta(name, NS),
        "spec": {
            "namespaceSelector": {"matchNames": [ns]},
            "selector": {"matchLabels": {"app": app}},
            "endpoints": [{"port": port, "interval": "15s", "path": "/metrics"}],
        },
    }


def dcgm_exporter(s: StackSettings) -> list[dict[str, Any]]:
    """DCGM exporter DaemonSet on GPU nodes (+ Service on 9400), in the node agents' namespace.

    Outside the restricted profile, as HOST_ACCESS["dcgm-exporter"] says why: root with SYS_ADMIN for the
    profiling metrics and the kubelet's pod-resources socket. allowPrivilegeEscalation stays unset: Kubernetes
    refuses `false` together with CAP_SYS_ADMIN."""
    host = HOST_ACCESS["dcgm-exporter"]
    labels = {"app": host.name}
    health = {"httpGet": {"path": "/health", "port": "metrics"}}  # dcgm-exporter's health endpoint
    pod: dict[str, Any] = {
        "tolerations": GPU_TOLERATIONS,
        # it maps GPUs to pods through the kubelet's pod-resources socket, never through the API server
        "automountServiceAccountToken": False,
        "securityContext": {"seccompProfile": {"type": "RuntimeDefault"}},
        "containers": [
            {
                "name": "dcgm-exporter",
                "image": IMAGES["dcgm-exporter"],
                "env": [
                    {"name": "DCGM_EXPORTER_LISTEN", "value": f":{DCGM_PORT}"},
                    {"name": "DCGM_EXPORTER_KUBERNETES", "value": "true"},
                ],
                "ports": [{"name": "metrics", "containerPort": DCGM_PORT}],
                # the host engine needs a few seconds per GPU to start: readiness gates the Service meanwhile
                "readinessProbe": {**health, "initialDelaySeconds": 10, "periodSeconds": 10},
                "livenessProbe": {**health, "initialDelaySeconds": 45, "periodSeconds": 15, "failureThreshold": 4},
                "resources": resources("100m", "512Mi", cpu_limit="500m"),
                "securityContext": {
                    "runAsNonRoot": False,
                    "runAsUser": 0,
                    "readOnlyRootFilesystem": True,
                    "capabilities": {"drop": ["ALL"], "add": ["SYS_ADMIN"]},
                    "seccompProfile": {"type": "RuntimeDefault"},
                },
                "volumeMounts": [
                    {"name": "pod-resources", "mountPath": "/var/lib/kubelet/pod-resources", "readOnly": True},
                    {"name": "tmp", "mountPath": "/tmp"},  # scratch space: the root filesystem is read-only
                ],
            }
        ],
        "volumes": [
            {"name": "pod-resources", "hostPath": {"path": "/var/lib/kubelet/pod-resources", "type": "Directory"}},
            {"name": "tmp", "emptyDir": {"sizeLimit": "64Mi"}},
        ],
    }
    pod = with_runtime_class(s, pod)
    if s.gpu.gfd:
        pod["nodeSelector"] = {"nvidia.com/gpu.present": "true"}  # label set by GPU Feature Discovery
    return [
        workload("DaemonSet", host.name, host.namespace, labels, pod, replicas=None),
        metrics_service(host.name, host.namespace, labels, DCGM_PORT),
    ]


def lab_exporter() -> list[dict[str, Any]]:
    """The lab's own Prometheus exporter (workloads.exporters, image ailab/exporter, user 10001)."""
    labels = {"app": EXPORTER}
    metrics = {"httpGet": {"path": "/metrics", "port": "metrics"}}  # prometheus_client's one endpoint
    container = {
        "name": "exporter",
        "image": facts.images().ref("exporter"),
        "args": ["--addr", "0.0.0.0", "--port", str(EXPORTER_PORT)],
        "ports": [{"name": "metrics", "containerPort": EXPORTER_PORT}],
        "readinessProbe": {**metrics, "periodSeconds": 10},
        "livenessProbe": {**metrics, "periodSeconds": 20, "failureThreshold": 3},
        "resources": resources("50m", "128Mi", cpu_limit="200m"),
        "securityContext": container_context(LAB_UID),
        "volumeMounts": [{"name": "tmp", "mountPath": "/tmp"}],  # HOME and TMPDIR of the image
    }
    pod = {"containers": [container], "volumes": [{"name": "tmp", "emptyDir": {"sizeLimit": "64Mi"}}]}
    return [
        workload("Deployment", EXPORTER, NS, labels, restricted_pod(pod)),  # reads NVML and /proc: no API calls
        metrics_service(EXPORTER, NS, labels, EXPORTER_PORT),
    ]


def federation(s: StackSettings) -> list[dict[str, Any]]:
    """A 'global' Prometheus federating the lab Prometheus' Triton/GPU series and recording rules."""
    labels = {"app": "prometheus-global"}
    config = {
        "global": {"scrape_interval": "30s", "external_labels": {"tier": "global"}},
        "scrape_configs": [
            {
                "job_name": "federate",
                "honor_labels": True,
                "metrics_path": "/federate",
                "params": {
                    "match[]": ['{job=~".*triton.*|.*dcgm.*|.*exporter.*"}', '{__name__=~"job:.*|instance:.*"}']
                },
                "static_configs": [{"targets": ["kube-prometheus-stack-prometheus.monitoring.svc:9090"]}],
            }
        ],
    }
    return [
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": meta("prometheus-global", NS),
            "data": {"prometheus.yml": yaml.safe_dump(config, sort_keys=False)},
        },
        workload(
            "Deployment",
            "prometheus-global",
            NS,
            labels,
            # static targets only (no Kubernetes service discovery): it never calls the API, so no token
            restricted_pod(
                {
                    "containers": [
                        {
                            "name": "prometheus",
                            "image": IMAGES["prometheus"],
                            "args": [
                                "--config.file=/etc/prometheus/prometheus.yml",
                                "--storage.tsdb.path=/prometheus",
                                f"--storage.tsdb.retention.time={s.monitoring.retention}",
                            ],
                            "ports": [{"name": "web", "containerPort": 9090}],
                            "readinessProbe": {"httpGet": {"path": "/-/ready", "port": "web"}, "periodSeconds": 5},
                            "livenessProbe": {
                                "httpGet": {"path": "/-/healthy", "port": "web"},
                                "periodSeconds": 15,
                                "failureThreshold": 4,
                            },
                            "resources": resources("200m", "1Gi", cpu_limit="1"),
                            "securityContext": container_context(PROMETHEUS_UID),
                            "volumeMounts": [
                                {"name": "config", "mountPath": "/etc/prometheus", "readOnly": True},
                                {"name": "data", "mountPath": "/prometheus"},  # the only path it writes
                            ],
                        }
                    ],
                    "volumes": [
                        {"name": "config", "configMap": {"name": "prometheus-global"}},
                        {"name": "data", "emptyDir": {"sizeLimit": "10Gi"}},
                    ],
                },
                PROMETHEUS_UID,
            ),
        ),
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": meta("prometheus-global", NS, labels),
            "spec": {"selector": labels, "ports": [{"name": "web", "port": 9090, "targetPort": "web"}]},
        },
    ]


def thanos() -> tuple[HelmRelease, dict[str, Any]]:
    """Thanos query + store gateway over a bundled MinIO bucket that the Prometheus sidecar uploads to."""
    objstore = {
        "type": "S3",
        "config": {
            "bucket": "thanos",
            "endpoint": "thanos-minio.monitoring.svc:9000",
            "insecure": True,
            "access_key": "thanos",
            "secret_key": secret_ref("thanos-minio"),
        },
    }
    secret = {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": meta(THANOS_SECRET, NS),
        "type": "Opaque",
        "stringData": {"objstore.yml": yaml.safe_dump(objstore, sort_keys=False)},
    }
    release = HelmRelease(
        "thanos",
        NS,
        {
            "existingObjstoreSecret": THANOS_SECRET,
            "query": {
                "enabled": True,
                "dnsDiscovery": {"sidecarsService": "kube-prometheus-stack-thanos-discovery", "sidecarsNamespace": NS},
            },
            "storegateway": {"enabled": True},
            "minio": {
                "enabled": True,
                "auth": {"rootUser": "thanos", "rootPassword": secret_ref("thanos-minio")},
                "defaultBuckets": "thanos",
            },
        },
    )
    return release, secret


def plan(s: StackSettings, at: PlanInputs) -> Plan:
    """Monitoring component for the stack's settings; dashboards/rules come from `dashboards_dir`."""
    ns = at.namespace
    dashboards_dir = at.dashboards_dir
    p = Plan("monitoring", "ailab:monitoring:Monitoring")
    p.manifests.append(
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": meta("grafana-admin", NS),
            "type": "Opaque",
            "stringData": {"admin-user": "admin", "admin-password": secret_ref("grafana-admin")},
        }
    )
    p.releases.append(stack_release(s))
    p.namespaces.append(HOST_ACCESS["node-exporter"].namespace)  # node-exporter's namespaceOverride
    p.manifests += lab_exporter()
    p.manifests += [
        service_monitor("triton", ns, "triton", "metrics"),
        service_monitor(EXPORTER, NS, EXPORTER, "metrics"),
    ]
    if s.monitoring.dcgm and s.gpu.enabled and s.gpu.mode == "device-plugin":  # the GPU Operator brings its own
        p.manifests += dcgm_exporter(s)
        p.manifests.append(service_monitor("dcgm-exporter", SYSTEM_NS, "dcgm-exporter", "metrics"))
    if s.monitoring.dashboards:
        p.manifests += dashboard_configmaps(dashboards_dir)
    if s.monitoring.rules:
        p.manifests += prometheus_rules(dashboards_dir)
    if s.monitoring.federation:
        p.manifests += federation(s)
    if s.monitoring.thanos:
        release, secret = thanos()
        p.releases.append(release)
        p.manifests.append(secret)
    p.outputs["prometheus"] = "kube-prometheus-stack-prometheus.monitoring.svc:9090"
    return p
