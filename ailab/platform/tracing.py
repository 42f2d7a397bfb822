"""Tracing component: OpenTelemetry Collector (OTLP in, Jaeger out) and Jaeger all-in-one."""

from __future__ import annotations

from typing import Any

from ailab.platform.config import StackSettings
from ailab.platform.model import HelmRelease, Plan, PlanInputs, meta, resources, workload
from ailab.platform.podsecurity import LAB_UID, container_context, pod_context, restricted_pod
from ailab.platform.versions import IMAGES

NS = "observability"


def collector_release() -> HelmRelease:
    """opentelemetry-collector receiving OTLP (Triton's --trace-config) and exporting to Jaeger over OTLP/gRPC."""
    config = {
        "receivers": {
            "otlp": {"protocols": {"grpc": {"endpoint": "0.0.0.0:4317"}, "http": {"endpoint": "0.0.0.0:4318"}}}
        },
        "processors": {
            "batch": {},
            "memory_limiter": {"check_interval": "1s", "limit_percentage": 80, "spike_limit_percentage": 20},
        },
        "exporters": {"otlp/jaeger": {"endpoint": "jaeger.observability.svc:4317", "tls": {"insecure": True}}},
        "service": {
            "pipelines": {
                "traces": {
                    "receivers": ["otlp"],
                    "processors": ["memory_limiter", "batch"],
                    "exporters": ["otlp/jaeger"],
                }
            }
        },
    }
    return HelmRelease(
        "opentelemetry-collector",
        NS,
        {
            "mode": "deployment",
            "fullnameOverride": "otel-collector",
            "image": {"repository": "otel/opentelemetry-collector-contrib"},
            "config": config,
            "resources": {"requests": {"cpu": "100m", "memory": "256Mi"}, "limits": {"cpu": "500m", "memory": "512Mi"}},
            # the chart's podSecurityContext/securityContext values: restricted like the pods rendered here
            "podSecurityContext": {k: v for k, v in pod_context(LAB_UID).items() if k != "fsGroup"},
            "securityContext": container_context(LAB_UID),
        },
    )


JAEGER_UID = 10001  # the all-in-one image's own user (its Dockerfile: USER 10001)
JAEGER_ADMIN_PORT = 14269  # admin port: `/` answers 200 when the collector and query are serving


def jaeger() -> list[dict[str, Any]]:
    """Jaeger all-in-one (in-memory storage, fine for a lab) with OTLP and query ports."""
    labels = {"app": "jaeger"}
    ports = {"otlp-grpc": 4317, "otlp-http": 4318, "query": 16686}
    health = {"httpGet": {"path": "/", "port": "admin"}}
    container = {
        "name": "jaeger",
        "image": IMAGES["jaeger"],
        "env": [{"name": "MEMORY_MAX_TRACES", "value": "50000"}],
        "ports": [{"name": n, "containerPort": p} for n, p in ports.items()]
        + [{"name": "admin", "containerPort": JAEGER_ADMIN_PORT}],
        "readinessProbe": {**health, "periodSeconds": 5},
        "livenessProbe": {**health, "periodSeconds": 10, "failureThreshold": 6},
        "resources": resources("100m", "512Mi", cpu_limit="500m"),
        "securityContext": container_context(JAEGER_UID),
        "volumeMounts": [{"name": "tmp", "mountPath": "/tmp"}],  # scratch space: traces stay in memory
    }
    pod = {"containers": [container], "volumes": [{"name": "tmp", "emptyDir": {"sizeLimit": "256Mi"}}]}
    return [
        workload("Deployment", "jaeger", NS, labels, restricted_pod(pod, JAEGER_UID)),  # no API calls: no token
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": meta("jaeger", NS, labels),
            "spec": {"selector": labels, "ports": [{"name": n, "port": p, "targetPort": n} for n, p in ports.items()]},
        },
    ]


def plan(s: StackSettings, at: PlanInputs) -> Plan:
    """Tracing component for the stack's settings."""
    p = Plan("tracing", "ailab:tracing:Tracing", releases=[collector_release()], manifests=jaeger())
    p.outputs["jaegerUi"] = f"jaeger.{NS}.svc:16686"
    return p
