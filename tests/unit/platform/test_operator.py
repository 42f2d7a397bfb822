"""Reconcile logic of the ModelDeployment operator (workloads/operator): spec -> Deployment, status, patches."""

from __future__ import annotations

import copy

import pytest

from workloads.operator.reconcile import SpecError, desired_deployment, diff, status_from

IMAGE = "localhost/ailab-triton-models:0.1.0"


def test_desired_deployment_loads_exactly_the_model() -> None:
    dep = desired_deployment("bert", "ailab", {"model": "bert_onnx", "replicas": 3, "gpus": 1}, IMAGE)
    assert dep["metadata"]["name"] == "md-bert" and dep["spec"]["replicas"] == 3
    c = dep["spec"]["template"]["spec"]["containers"][0]
    assert "--model-control-mode=explicit" in c["args"] and "--load-model=bert_onnx" in c["args"]
    assert c["resources"]["requests"]["nvidia.com/gpu"] == c["resources"]["limits"]["nvidia.com/gpu"] == "1"
    assert dep["spec"]["template"]["spec"]["initContainers"][0]["image"] == IMAGE


def test_cpu_only_model_requests_no_gpu() -> None:
    dep = desired_deployment("m", "ailab", {"model": "mlp", "gpus": 0}, IMAGE)
    assert "nvidia.com/gpu" not in str(dep)


@pytest.mark.parametrize(
    ("spec", "field"),
    [
        ({}, "spec.model"),
        ({"model": "a b"}, "spec.model"),
        ({"model": "m", "replicas": -1}, "spec.replicas"),
        ({"model": "m", "replicas": "2"}, "spec.replicas"),
        ({"model": "m", "gpus": 9}, "spec.gpus"),
    ],
)
def test_bad_spec_names_the_field(spec: dict, field: str) -> None:
    with pytest.raises(SpecError, match=field):
        desired_deployment("m", "ailab", spec, IMAGE)


def test_diff_creates_then_patches_only_what_changed() -> None:
    want = desired_deployment("m", "ailab", {"model": "mlp", "replicas": 2}, IMAGE)
    assert diff(None, want) == want
    assert diff(copy.deepcopy(want), want) is None
    current = copy.deepcopy(want)
    current["spec"]["replicas"] = 1
    assert diff(current, want) == {"spec": {"replicas": 2}}
    other = desired_deployment("m", "ailab", {"model": "bert", "replicas": 2}, IMAGE)
    assert diff(current, other)["spec"]["template"] == other["spec"]["template"]


def test_status_follows_the_deployment() -> None:
    spec = {"model": "mlp", "replicas": 2}
    assert status_from(None, spec)["phase"] == "Pending"
    assert status_from({"status": {"readyReplicas": 1}}, spec) == {
        "phase": "Progressing",
        "readyReplicas": 1,
        "replicas": 2,
    }
    assert status_from({"status": {"readyReplicas": 2}}, spec)["phase"] == "Ready"


def test_controller_module_registers_kopf_handlers() -> None:
    import kopf

    from workloads.operator import controller

    registry = kopf.get_default_registry()
    handlers = registry._changing.get_all_handlers() if hasattr(registry, "_changing") else []
    assert callable(controller.reconcile)
    assert any(getattr(h, "fn", None) is controller.reconcile for h in handlers)
