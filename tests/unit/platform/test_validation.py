"""Every rendered manifest of every week, validated offline.

Core kinds: kubernetes-validate in strict mode (unknown fields are errors) for Kubernetes 1.30 and the newest
version it has. Custom resources: the upstream CRD schemas as compiled by the npm `@kubernetes-models/*`
packages (tests/unit/platform/crdcheck, run with node); the lab's own CRD: its openAPIV3Schema via jsonschema.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import jsonschema
import kubernetes_validate
import pytest
from pulumi_harness import manifests

from ailab.platform.model import CORE_GROUPS, CRD_PROVIDERS, api_group
from ailab.platform.objects import operator_crd

CRDCHECK = Path(__file__).parent / "crdcheck"
VERSIONS = ("1.30.0", kubernetes_validate.latest_version())


def unique(docs: list[dict]) -> list[dict]:
    seen: dict[str, dict] = {}
    for d in docs:
        seen.setdefault(json.dumps(d, sort_keys=True), d)
    return list(seen.values())


@pytest.fixture(scope="module")
def all_manifests(plans_by_week) -> list[dict]:
    return unique([m for _, plans in plans_by_week.values() for m in manifests(plans)])


def test_core_manifests_are_valid_in_strict_mode(all_manifests: list[dict]) -> None:
    core = [m for m in all_manifests if api_group(m) in CORE_GROUPS]
    assert len(core) > 50
    errors = []
    for m in core:
        for version in VERSIONS:
            try:
                kubernetes_validate.validate(m, version, strict=True)
            except kubernetes_validate.ValidationError as exc:
                errors.append(f"{version} {m['kind']}/{m['metadata']['name']}: {exc.message}")
    assert errors == []


def test_strict_validation_catches_an_unknown_field(all_manifests: list[dict]) -> None:
    dep = json.loads(json.dumps(next(m for m in all_manifests if m["kind"] == "Deployment")))
    dep["spec"]["template"]["spec"]["containers"][0]["resource"] = {}  # typo of `resources`
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(dep, VERSIONS[0], strict=True)


def _node_check(docs: list[dict]) -> list[dict]:
    node, npm = shutil.which("node"), shutil.which("npm")
    if not node or not npm:
        pytest.skip("node/npm not installed: upstream CRD schemas come from npm packages")
    if not (CRDCHECK / "node_modules").is_dir():
        done = subprocess.run(
            [npm, "ci", "--no-audit", "--no-fund"],
            cwd=CRDCHECK,
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
        if done.returncode != 0:
            pytest.skip(f"npm ci in {CRDCHECK} failed (no npm registry?): {done.stderr[-300:]}")
    out = subprocess.run(
        [node, "check.mjs"],
        cwd=CRDCHECK,
        input=json.dumps(docs),
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    return json.loads(out.stdout)


def test_custom_resources_match_upstream_crd_schemas(all_manifests: list[dict]) -> None:
    custom = [m for m in all_manifests if api_group(m) in CRD_PROVIDERS]
    kinds = {m["kind"] for m in custom}
    assert {
        "ServiceMonitor",
        "PrometheusRule",
        "VirtualService",
        "DestinationRule",
        "Gateway",
        "RequestAuthentication",
        "AuthorizationPolicy",
        "Application",
        "ScaledObject",
        "Certificate",
        "Issuer",
        "EnvoyFilter",
    } <= kinds
    results = _node_check(custom)
    errors = [
        f"{custom[r['index']]['kind']}/{custom[r['index']]['metadata']['name']}: {r['error']}"
        for r in results
        if r["error"]
    ]
    assert len(results) == len(custom) and errors == []


def test_upstream_crd_schemas_reject_a_broken_resource(all_manifests: list[dict]) -> None:
    """The checker really validates: a ScaledObject without scaleTargetRef and a weight as text are refused."""
    so = json.loads(json.dumps(next(m for m in all_manifests if m["kind"] == "ScaledObject")))
    del so["spec"]["scaleTargetRef"]
    vs = json.loads(json.dumps(next(m for m in all_manifests if m["kind"] == "VirtualService")))
    vs["spec"]["http"][0]["route"][0]["weight"] = "ninety"
    results = _node_check([so, vs])
    assert "scaleTargetRef" in results[0]["error"] and "weight" in results[1]["error"]


def test_model_deployments_match_the_labs_own_crd(all_manifests: list[dict]) -> None:
    schema = operator_crd()["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    mds = [m for m in all_manifests if m["kind"] == "ModelDeployment"]
    assert mds
    for md in mds:
        jsonschema.validate({"spec": md["spec"]}, schema)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({"spec": {"replicas": 1}}, schema)  # model is required
