"""Platform objects the curriculum uses: a node log collector DaemonSet, the ModelDeployment operator
(CRD + kopf controller), Cluster Autoscaler for cloud targets, kubelet Topology/CPU manager args for k3s."""

from __future__ import annotations

from typing import Any

from ailab.contract import facts
from ailab.platform.config import StackSettings
from ailab.platform.model import HelmRelease, Plan, PlanInputs, meta, resources, workload
from ailab.platform.podsecurity import HOST_ACCESS, LAB_UID, container_context, restricted_pod
from ailab.platform.versions import IMAGES

OPERATOR = "modeldeployment-operator"
OPERATOR_HEALTH_PORT = 8080


FLUENT_BIT_HTTP = 2020  # fluent-bit's built-in HTTP server: `/` (build info) and `/api/v1/health`


def log_collector() -> list[dict[str, Any]]:
    """fluent-bit DaemonSet tailing container logs on every node, in the node agents' namespace.

    Outside the restricted profile as HOST_ACCESS["log-collector"] says why: root, to read the kubelet's
    root-only log files through a read-only hostPath; every capability is still dropped, the root filesystem is
    read-only and privilege escalation is off."""
    host = HOST_ACCESS["log-collector"]
    labels = {"app": host.name}
    config = (
        # Health_Check: /api/v1/health turns 500 after repeated output errors (what the liveness probe watches)
        f"[SERVICE]\n    HTTP_Server On\n    HTTP_Listen 0.0.0.0\n    HTTP_Port {FLUENT_BIT_HTTP}\n"
        "    Health_Check On\n"
        "[INPUT]\n    Name tail\n    Path /var/log/containers/*.log\n    multiline.parser cri\n"
        "    Mem_Buf_Limit 16MB\n[OUTPUT]\n    Name stdout\n    Match *\n    Format json_lines\n"
    )
    return [
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": meta(host.name, host.namespace),
            "data": {"fluent-bit.conf": config},
        },
        workload(
            "DaemonSet",
            host.name,
            host.namespace,
            labels,
            {
                "tolerations": [{"operator": "Exists"}],  # every node, GPU-tainted or control-plane
                # tails files only (no kubernetes filter): it never calls the API, so no token
                "automountServiceAccountToken": False,
                "securityContext": {"seccompProfile": {"type": "RuntimeDefault"}},
                "containers": [
                    {
                        "name": "fluent-bit",
                        "image": IMAGES["fluent-bit"],
                        "args": ["-c", "/fluent-bit/etc/fluent-bit.conf"],
                        "ports": [{"name": "http", "containerPort": FLUENT_BIT_HTTP}],
                        "livenessProbe": {"httpGet": {"path": "/", "port": "http"}, "periodSeconds": 15},
                        "readinessProbe": {"httpGet": {"path": "/api/v1/health", "port": "http"}, "periodSeconds": 10},
                        "resources": resources("50m", "64Mi", cpu_limit="200m"),
                        "securityContext": {
                            "runAsNonRoot": False,
                            "runAsUser": 0,
                            "readOnlyRootFilesystem": True,
                            "allowPrivilegeEscalation": False,
                            "capabilities": {"drop": ["ALL"]},
                            "seccompProfile": {"type": "RuntimeDefault"},
                        },
                        "volumeMounts": [
                            {"name": "config", "mountPath": "/fluent-bit/etc", "readOnly": True},
                            {"name": "varlog", "mountPath": "/var/log", "readOnly": True},
                        ],
                    }
                ],
                "volumes": [
                    {"name": "config", "configMap": {"name": host.name}},
                    {"name": "varlog", "hostPath": {"path": "/var/log", "type": "Directory"}},
                ],
            },
            replicas=None,
        ),
    ]


def operator_crd() -> dict[str, Any]:
    """CustomResourceDefinition of ModelDeployment, its identity from ailab/contract/facts/operator.yaml."""
    crd = facts.operator()
    spec_schema = {
        "type": "object",
        "required": ["model"],
        "properties": {
            "model": {"type": "string", "pattern": "^[a-zA-Z0-9_.-]+$"},
            "replicas": {"type": "integer", "minimum": 0, "maximum": 16, "default": 1},
            "gpus": {"type": "integer", "minimum": 0, "maximum": 8, "default": 1},
        },
    }
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": meta(crd.crd_name),
        "spec": {
            "group": crd.group,
            "scope": "Namespaced",
            "names": {
                "kind": crd.kind,
                "plural": crd.plural,
                "singular": crd.singular,
                "shortNames": list(crd.short_names),
            },
            "versions": [
                {
                    "name": crd.version,
                    "served": True,
                    "storage": True,
                    "subresources": {"status": {}},
                    "schema": {
                        "openAPIV3Schema": {
                            "type": "object",
                            "properties": {
                                "spec": spec_schema,
                                "status": {"type": "object", "x-kubernetes-preserve-unknown-fields": True},
                            },
                        }
                    },
                }
            ],
        },
    }


def operator(ns: str, week: int) -> list[dict[str, Any]]:
    """RBAC + kopf controller Deployment + one example ModelDeployment."""
    labels = {"app": OPERATOR}
    crd = facts.operator()
    model = facts.week(week).models[0]  # the example serves the week's first model
    rules = [
        {
            "apiGroups": [crd.group],
            "resources": [crd.plural, f"{crd.plural}/status"],
            "verbs": ["get", "list", "watch", "patch", "update"],
        },
        {"apiGroups": ["apps"], "resources": ["deployments"], "verbs": ["get", "list", "watch", "create", "patch"]},
        {"apiGroups": [""], "resources": ["events"], "verbs": ["create"]},
        {
            "apiGroups": ["apiextensions.k8s.io"],
            "resources": ["customresourcedefinitions"],
            "verbs": ["get", "list", "watch"],
        },
        {"apiGroups": [""], "resources": ["namespaces"], "verbs": ["get", "list", "watch"]},
    ]
    return [
        operator_crd(),
        {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": meta(OPERATOR, ns)},
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "ClusterRole",
            "metadata": meta(OPERATOR),
            "rules": rules,
        },
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "ClusterRoleBinding",
            "metadata": meta(OPERATOR),
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": OPERATOR},
            "subjects": [{"kind": "ServiceAccount", "name": OPERATOR, "namespace": ns}],
        },
        workload(
            "Deployment",
            OPERATOR,
            ns,
            labels,
            {
                **restricted_pod({}),
                "serviceAccountName": OPERATOR,
                # an API caller (API_CALLERS): kopf watches ModelDeployments and patches Deployments
                "automountServiceAccountToken": True,
                "containers": [
                    {
                        "name": "controller",
                        "image": facts.images().ref("inference"),
                        "command": [
                            "python",
                            "-m",
                            "kopf",
                            "run",
                            "-m",
                            "workloads.operator.controller",
                            "--all-namespaces",
                            f"--liveness=http://0.0.0.0:{OPERATOR_HEALTH_PORT}/healthz",
                        ],
                        "env": [
                            {"name": "AILAB_MODELS_IMAGE", "value": facts.images().ref("triton-models")},
                            {"name": "AILAB_WEEK", "value": f"{week:02d}"},
                        ],
                        "ports": [{"name": "health", "containerPort": OPERATOR_HEALTH_PORT}],
                        # kopf's one health endpoint: 200 once the operator has started and while it is alive
                        "readinessProbe": {"httpGet": {"path": "/healthz", "port": "health"}, "periodSeconds": 10},
                        "livenessProbe": {
                            "httpGet": {"path": "/healthz", "port": "health"},
                            "initialDelaySeconds": 15,
                            "periodSeconds": 20,
                        },
                        "resources": resources("50m", "128Mi", cpu_limit="200m"),
                        "securityContext": container_context(LAB_UID),  # the image's ailab user
                        "volumeMounts": [{"name": "tmp", "mountPath": "/tmp"}],  # HOME and TMPDIR of the image
                    }
                ],
                "volumes": [{"name": "tmp", "emptyDir": {"sizeLimit": "64Mi"}}],
            },
        ),
        {
            "apiVersion": crd.api_version,
            "kind": crd.kind,
            "metadata": meta(f"{model}-demo", ns),
            "spec": {"model": model, "replicas": 1, "gpus": 1},
        },
    ]


def autoscaler_release(s: StackSettings) -> HelmRelease:
    """Cluster Autoscaler discovering the cloud provider's node groups tagged for this cluster."""
    a = s.autoscaler
    values: dict[str, Any] = {
        "cloudProvider": a.cloud_provider,
        "autoDiscovery": {"clusterName": a.cluster_name},
        "extraArgs": {
            "expander": "least-waste",
            "scale-down-unneeded-time": "5m",
            "balance-similar-node-groups": True,
            "skip-nodes-with-local-storage": False,
        },
    }
    if a.cloud_provider == "aws":
        values["awsRegion"] = a.region
    return HelmRelease("cluster-autoscaler", "kube-system", values)


def kubelet_args(s: StackSettings) -> list[str]:
    """kubelet-arg entries for k3s agents (the k3s role writes them to /etc/rancher/k3s/config.yaml)."""
    k = s.kubelet
    args = [f"topology-manager-policy={k.topology_manager_policy}", f"cpu-manager-policy={k.cpu_manager_policy}"]
    if k.topology_manager_policy != "none":
        args.append("topology-manager-scope=pod")
    if k.reserved_cpus:
        args.append(f"reserved-cpus={k.reserved_cpus}")  # static CPU manager needs CPUs reserved for the system
    return args


def plan(s: StackSettings, at: PlanInputs) -> Plan:
    """Platform-objects component for the stack's settings."""
    ns = at.namespace
    p = Plan("objects", "ailab:platform:Objects")
    if s.objects.log_collector:
        p.manifests += log_collector()
    if s.objects.operator:
        p.manifests += operator(ns, s.week)
    if s.autoscaler.enabled and s.cluster.target == "existing":  # node groups exist only on a cloud cluster
        p.releases.append(autoscaler_release(s))
    p.outputs["k3sKubeletArgs"] = kubelet_args(s)
    return p
