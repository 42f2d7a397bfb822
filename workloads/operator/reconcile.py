"""Pure reconcile logic of the ModelDeployment operator: custom resource spec in, desired Deployment out.

Kept free of kopf and the Kubernetes client so it is unit-tested without a cluster.
"""

from __future__ import annotations

import re
from typing import Any

from ailab.contract import facts

# The custom resource's identity and the Triton pin come from ailab/contract/facts/ (operator.yaml, images.yaml),
# which the cluster stack reads too when it installs the CRD: one definition for both.
GROUP = facts.operator().group
VERSION = facts.operator().version
KIND = facts.operator().kind
PLURAL = facts.operator().plural
TRITON_IMAGE = facts.images().pinned("tritonserver")


class SpecError(ValueError):
    """A ModelDeployment spec field is invalid; the message names the field, the value and what is allowed."""


def validate(spec: dict[str, Any]) -> None:
    """Raise SpecError for a spec the controller cannot turn into a Deployment."""
    model = spec.get("model")
    if not isinstance(model, str) or not re.fullmatch(r"[a-zA-Z0-9_.-]+", model):
        raise SpecError(f"spec.model {model!r}: a Triton model name ([a-zA-Z0-9_.-]+) is required")
    replicas = spec.get("replicas", 1)
    if not isinstance(replicas, int) or isinstance(replicas, bool) or not 0 <= replicas <= 16:
        raise SpecError(f"spec.replicas {replicas!r}: an integer 0..16 is allowed")
    gpus = spec.get("gpus", 1)
    if not isinstance(gpus, int) or isinstance(gpus, bool) or not 0 <= gpus <= 8:
        raise SpecError(f"spec.gpus {gpus!r}: an integer 0..8 is allowed")


def deployment_name(name: str) -> str:
    return f"md-{name}"[:63]


def desired_deployment(
    name: str, namespace: str, spec: dict[str, Any], models_image: str, week: str = "01"
) -> dict[str, Any]:
    """The Deployment a ModelDeployment wants: Triton loading exactly spec.model (from week `week`'s
    repository in the triton-models image), spec.replicas times."""
    validate(spec)
    labels = {"app": "triton", "lab.ailab.dev/model-deployment": name, "version": "stable"}
    gpus = spec.get("gpus", 1)
    limits: dict[str, str] = {"cpu": "2", "memory": "4Gi"}
    requests: dict[str, str] = {"cpu": "1", "memory": "4Gi"}
    if gpus:
        limits["nvidia.com/gpu"] = requests["nvidia.com/gpu"] = str(gpus)
    # Pod Security "restricted" (the ailab namespace enforces it; docs/security.md): the lab's UID 10001, the same
    # as the stack's own Triton (ailab/platform/serving.py; literal here, workloads may not import the platform)
    security = {
        "runAsNonRoot": True,
        "runAsUser": 10001,
        "runAsGroup": 10001,
        "allowPrivilegeEscalation": False,
        "readOnlyRootFilesystem": True,
        "capabilities": {"drop": ["ALL"]},
        "seccompProfile": {"type": "RuntimeDefault"},
    }
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": deployment_name(name), "namespace": namespace, "labels": labels},
        "spec": {
            "replicas": spec.get("replicas", 1),
            "selector": {"matchLabels": {"lab.ailab.dev/model-deployment": name}},
            "template": {
                "metadata": {"labels": labels},
                "spec": {
                    "securityContext": {
                        "runAsNonRoot": True,
                        "runAsUser": 10001,
                        "runAsGroup": 10001,
                        "fsGroup": 10001,
                        "seccompProfile": {"type": "RuntimeDefault"},
                    },
                    "automountServiceAccountToken": False,  # Triton never calls the Kubernetes API
                    "initContainers": [
                        {
                            "name": "model-repository",
                            "image": models_image,
                            # the image's entry point copies /models/week$WEEK into $TARGET_DIR
                            "env": [{"name": "WEEK", "value": week}, {"name": "TARGET_DIR", "value": "/shared"}],
                            "volumeMounts": [{"name": "models", "mountPath": "/shared"}],
                            "resources": {
                                "requests": {"cpu": "100m", "memory": "256Mi"},
                                "limits": {"cpu": "100m", "memory": "256Mi"},
                            },
                            "securityContext": security,  # 10001 is also the models image's ailab user
                        }
                    ],
                    "containers": [
                        {
                            "name": "tritonserver",
                            "image": TRITON_IMAGE,
                            "command": ["tritonserver"],
                            "args": [
                                "--model-repository=/models",
                                "--model-control-mode=explicit",
                                f"--load-model={spec['model']}",
                            ],
                            "ports": [
                                {"name": "http", "containerPort": 8000},
                                {"name": "metrics", "containerPort": 8002},
                            ],
                            "env": [{"name": "HOME", "value": "/tmp"}],  # the image's home is not writable
                            "readinessProbe": {"httpGet": {"path": "/v2/health/ready", "port": "http"}},
                            "livenessProbe": {
                                "httpGet": {"path": "/v2/health/live", "port": "http"},
                                "periodSeconds": 10,
                                "failureThreshold": 6,
                            },
                            "resources": {"requests": requests, "limits": limits},
                            "securityContext": security,
                            "volumeMounts": [
                                {"name": "models", "mountPath": "/models", "readOnly": True},
                                {"name": "tmp", "mountPath": "/tmp"},
                            ],
                        }
                    ],
                    "volumes": [{"name": "models", "emptyDir": {}}, {"name": "tmp", "emptyDir": {}}],
                },
            },
        },
    }


def status_from(deployment: dict[str, Any] | None, spec: dict[str, Any]) -> dict[str, Any]:
    """ModelDeployment status from its Deployment's status: phase Pending/Progressing/Ready."""
    want = spec.get("replicas", 1)
    ready = int(((deployment or {}).get("status") or {}).get("readyReplicas") or 0)
    phase = "Pending" if deployment is None else ("Ready" if ready >= want else "Progressing")
    return {"phase": phase, "readyReplicas": ready, "replicas": want}


def diff(current: dict[str, Any] | None, desired: dict[str, Any]) -> dict[str, Any] | None:
    """The patch that turns current into desired (replicas and the container args), None when nothing changes."""
    if current is None:
        return desired
    patch: dict[str, Any] = {}
    if current["spec"].get("replicas") != desired["spec"]["replicas"]:
        patch.setdefault("spec", {})["replicas"] = desired["spec"]["replicas"]
    cur_c = current["spec"]["template"]["spec"]["containers"][0]
    want_c = desired["spec"]["template"]["spec"]["containers"][0]
    if cur_c.get("args") != want_c["args"] or cur_c.get("resources") != want_c["resources"]:
        patch.setdefault("spec", {})["template"] = desired["spec"]["template"]
    return patch or None
