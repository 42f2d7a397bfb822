"""kopf controller of ModelDeployment: `kopf run -m workloads.operator.controller --all-namespaces`.

Runs in the cluster as the Deployment rendered by ailab/platform/objects.py; the decisions are in reconcile.py.
"""

from __future__ import annotations

import os
from typing import Any

import kopf

from workloads.operator.reconcile import (
    GROUP,
    PLURAL,
    VERSION,
    SpecError,
    deployment_name,
    desired_deployment,
    diff,
    status_from,
)

MODELS_IMAGE = os.environ.get("AILAB_MODELS_IMAGE", "localhost/ailab-triton-models:0.1.0")
WEEK = os.environ.get("AILAB_WEEK", "01")  # which week's repository of the image to serve from


def _apps():
    import kubernetes

    try:
        kubernetes.config.load_incluster_config()
    except kubernetes.config.ConfigException:
        kubernetes.config.load_kube_config()
    return kubernetes.client.AppsV1Api()


@kopf.on.create(GROUP, VERSION, PLURAL)
@kopf.on.update(GROUP, VERSION, PLURAL)
@kopf.on.resume(GROUP, VERSION, PLURAL)
def reconcile(spec: dict[str, Any], name: str, namespace: str, body: Any, **_: Any) -> dict[str, Any]:
    """Create or patch the Deployment to match the spec; the returned dict becomes status.reconcile."""
    try:
        desired = desired_deployment(name, namespace, dict(spec), MODELS_IMAGE, WEEK)
    except SpecError as exc:
        raise kopf.PermanentError(str(exc)) from None
    kopf.adopt(desired, owner=body)  # garbage-collected with the ModelDeployment
    api = _apps()
    import kubernetes

    try:
        obj = api.read_namespaced_deployment(deployment_name(name), namespace)
        current = api.api_client.sanitize_for_serialization(obj)  # camelCase like the manifests
    except kubernetes.client.ApiException as exc:
        if exc.status != 404:
            raise
        current = None
    patch = diff(current, desired)
    if current is None:
        api.create_namespaced_deployment(namespace, desired)
    elif patch:
        api.patch_namespaced_deployment(deployment_name(name), namespace, patch)
    return status_from(current, dict(spec))
