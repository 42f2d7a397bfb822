"""Serving component: Triton Deployment(s) + Service, model repository volume, probes for slow model loads,
PDB, PriorityClass, HPA (CPU and queue time via prometheus-adapter) or a KEDA ScaledObject."""

from __future__ import annotations

from typing import Any

from ailab.contract import facts
from ailab.platform.config import StackSettings
from ailab.platform.gpu import with_runtime_class
from ailab.platform.model import GPU_TOLERATIONS, HelmRelease, Plan, PlanInputs, meta, resources
from ailab.platform.podsecurity import LAB_UID, container_context, restricted_pod
from ailab.platform.versions import IMAGES

TRITON = "triton"
PORTS = {"http": 8000, "grpc": 8001, "metrics": 8002}
PRIORITY_CLASS = "ailab-inference"
QUEUE_METRIC = "triton_queue_time_us_per_request"  # served by prometheus-adapter from nv_inference_queue_duration_us
PROMETHEUS_URL = "http://kube-prometheus-stack-prometheus.monitoring.svc:9090"
OTLP_HTTP = "http://otel-collector.observability.svc:4318/v1/traces"


def model_names(s: StackSettings) -> list[str]:
    """Models Triton loads: the stack's list, else the week's models (ailab/contract/facts/weeks.yaml)."""
    if s.serving.models is not None:
        return list(s.serving.models)
    return list(facts.week(s.week).models)


def triton_args(s: StackSettings) -> list[str]:
    """tritonserver command line: fixed ports, explicit model control when asked, OpenTelemetry tracing."""
    args = [
        "--model-repository=/models",
        f"--http-port={PORTS['http']}",
        f"--grpc-port={PORTS['grpc']}",
        f"--metrics-port={PORTS['metrics']}",
        "--exit-on-error=false",  # one broken model must not take the others down
    ]
    if s.serving.explicit_model_control:
        args.append("--model-control-mode=explicit")
        args += [f"--load-model={m}" for m in model_names(s)]
    if s.tracing.enabled:
        rate = max(1, round(100 / s.tracing.sampling_percent))  # Triton samples 1 of every `rate` requests
        args += [
            "--trace-config=mode=opentelemetry",
            f"--trace-config=opentelemetry,url={OTLP_HTTP}",
            f"--trace-config=rate={rate}",
            "--trace-config=level=TIMESTAMPS",
        ]
    return args


def triton_deployment(s: StackSettings, ns: str, version: str) -> dict[str, Any]:
    """Triton Deployment; the init container copies the model repository image's models into /models."""
    labels = {"app": TRITON, "version": version}
    http = {"path": "/v2/health/ready", "port": "http"}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": meta(f"{TRITON}-{version}", ns, labels),
        "spec": {
            "replicas": s.serving.replicas if version == "stable" else 1,
            "selector": {"matchLabels": labels},
            "template": {
                "metadata": {"labels": labels},
                "spec": with_runtime_class(
                    s,
                    # tritonserver runs as any UID (no passwd lookup; HOME and scratch are volumes): the lab's UID,
                    # like the init container that fills /models; it serves HTTP/gRPC only, so no API token
                    restricted_pod(
                        {
                            "priorityClassName": PRIORITY_CLASS,
                            "tolerations": GPU_TOLERATIONS,
                            "initContainers": [
                                {
                                    "name": "model-repository",
                                    "image": facts.images().ref("triton-models"),
                                    # the image's entry point copies /models/week$WEEK into $TARGET_DIR
                                    "env": [
                                        {"name": "WEEK", "value": f"{s.week:02d}"},
                                        {"name": "TARGET_DIR", "value": "/shared"},
                                    ],
                                    "volumeMounts": [{"name": "models", "mountPath": "/shared"}],
                                    "resources": resources("100m", "256Mi"),
                                    "securityContext": container_context(LAB_UID),  # the image's ailab user
                                }
                            ],
                            "containers": [
                                {
                                    "name": "tritonserver",
                                    "image": IMAGES["tritonserver"],
                                    "command": ["tritonserver"],
                                    "args": triton_args(s),
                                    "env": [{"name": "HOME", "value": "/tmp"}],  # the image's home is not writable
                                    "ports": [{"name": n, "containerPort": p} for n, p in PORTS.items()],
                                    # model loads can take minutes (TensorRT engines, large ONNX files): the
                                    # startup probe allows 10 min before liveness starts counting.
                                    "startupProbe": {"httpGet": http, "periodSeconds": 10, "failureThreshold": 60},
                                    "readinessProbe": {"httpGet": http, "periodSeconds": 5, "failureThreshold": 3},
                                    "livenessProbe": {
                                        "httpGet": {"path": "/v2/health/live", "port": "http"},
                                        "periodSeconds": 10,
                                        "failureThreshold": 6,
                                    },
                                    "resources": resources(
                                        "1",
                                        "4Gi",
                                        gpu=1 if s.serving.gpu else 0,
                                        cpu_limit="2",
                                        gpu_resource=s.gpu.gpu_resource(),
                                    ),
                                    "securityContext": container_context(LAB_UID),
                                    "volumeMounts": [
                                        {"name": "models", "mountPath": "/models", "readOnly": True},
                                        {"name": "shm", "mountPath": "/dev/shm"},
                                        {"name": "tmp", "mountPath": "/tmp"},
                                    ],
                                }
                            ],
                            "volumes": [
                                {"name": "models", "emptyDir": {"sizeLimit": "8Gi"}},
                                # the python backend exchanges tensors through shared memory
                                {"name": "shm", "emptyDir": {"medium": "Memory", "sizeLimit": "1Gi"}},
                                {"name": "tmp", "emptyDir": {"sizeLimit": "1Gi"}},
                            ],
                        }
                    ),
                ),
            },
        },
    }


def triton_service(ns: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": meta(TRITON, ns, {"app": TRITON}),
        "spec": {
            "selector": {"app": TRITON},
            "ports": [
                {"name": f"{n}-{TRITON}" if n != "metrics" else n, "port": p, "targetPort": n} for n, p in PORTS.items()
            ],
        },
    }


def hpa(s: StackSettings, ns: str) -> dict[str, Any]:
    """autoscaling/v2 HPA on CPU utilisation and, when set, Triton's average queue time per request."""
    metrics: list[dict[str, Any]] = [
        {
            "type": "Resource",
            "resource": {
                "name": "cpu",
                "target": {"type": "Utilization", "averageUtilization": s.serving.hpa.cpu_utilization},
            },
        }
    ]
    if s.serving.hpa.queue_time_us:
        metrics.append(
            {
                "type": "Pods",
                "pods": {
                    "metric": {"name": QUEUE_METRIC},
                    "target": {"type": "AverageValue", "averageValue": str(s.serving.hpa.queue_time_us)},
                },
            }
        )
    return {
        "apiVersion": "autoscaling/v2",
        "kind": "HorizontalPodAutoscaler",
        "metadata": meta(TRITON, ns),
        "spec": {
            "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": f"{TRITON}-stable"},
            "minReplicas": s.serving.hpa.min_replicas,
            "maxReplicas": s.serving.hpa.max_replicas,
            "metrics": metrics,
        },
    }


def adapter_release() -> HelmRelease:
    """prometheus-adapter exposing Triton's queue time per request as a custom metric."""
    rule = {
        "seriesQuery": 'nv_inference_queue_duration_us{namespace!="",pod!=""}',
        "resources": {"overrides": {"namespace": {"resource": "namespace"}, "pod": {"resource": "pod"}}},
        "name": {"matches": "^nv_inference_queue_duration_us$", "as": QUEUE_METRIC},
        "metricsQuery": "sum(rate(nv_inference_queue_duration_us{<<.LabelMatchers>>}[1m])) by (<<.GroupBy>>)"
        " / clamp_min(sum(rate(nv_inference_request_success{<<.LabelMatchers>>}[1m])) by (<<.GroupBy>>), 1)",
    }
    return HelmRelease(
        "prometheus-adapter",
        "monitoring",
        {
            "prometheus": {"url": PROMETHEUS_URL.rsplit(":", 1)[0], "port": 9090},
            "rules": {"default": False, "custom": [rule]},
            "securityContext": container_context(LAB_UID),  # restricted, like the chart's default, but explicit
        },
    )


def scaled_object(s: StackSettings, ns: str) -> dict[str, Any]:
    """KEDA ScaledObject scaling Triton on its inference rate from Prometheus."""
    k = s.serving.keda
    return {
        "apiVersion": "keda.sh/v1alpha1",
        "kind": "ScaledObject",
        "metadata": meta(TRITON, ns),
        "spec": {
            "scaleTargetRef": {"name": f"{TRITON}-stable"},
            "minReplicaCount": k.min_replicas,
            "maxReplicaCount": k.max_replicas,
            "triggers": [
                {
                    "type": "prometheus",
                    "metadata": {
                        "serverAddress": PROMETHEUS_URL,
                        "query": f'sum(rate(nv_inference_count{{namespace="{ns}"}}[1m]))',
                        "threshold": f"{k.threshold:g}",
                    },
                }
            ],
        },
    }


def plan(s: StackSettings, at: PlanInputs) -> Plan:
    """Serving component for the stack's settings."""
    ns = at.namespace
    p = Plan("serving", "ailab:serving:Triton")
    p.manifests += [
        {
            "apiVersion": "scheduling.k8s.io/v1",
            "kind": "PriorityClass",
            "metadata": meta(PRIORITY_CLASS),
            "value": 100000,
            "globalDefault": False,
            "description": "online inference: preempts batch work",
        },
        triton_deployment(s, ns, "stable"),
        triton_service(ns),
        {
            "apiVersion": "policy/v1",
            "kind": "PodDisruptionBudget",
            "metadata": meta(TRITON, ns),
            "spec": {"maxUnavailable": 1, "selector": {"matchLabels": {"app": TRITON}}},
        },
    ]
    if s.serving.canary:
        p.manifests.append(triton_deployment(s, ns, "canary"))
    if s.serving.hpa.enabled:
        p.manifests.append(hpa(s, ns))
        if s.serving.hpa.queue_time_us:
            p.releases.append(adapter_release())
    if s.serving.keda.enabled:
        p.releases.append(HelmRelease("keda", "keda", {}))
        p.manifests.append(scaled_object(s, ns))
    p.outputs["tritonService"] = f"{TRITON}.{ns}.svc:{PORTS['http']}"
    return p
