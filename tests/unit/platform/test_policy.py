"""Policies over every week's rendered manifests and Helm values: resources, GPU requests, image tags,
privileged Helm values only where allowed, no plaintext secrets. The Pod Security baseline (restricted profile,
probes, tokens, secrets as files) is test_pod_security.py.

What Helm charts template themselves is not rendered here (no `helm` binary offline); their values are checked.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest
from pulumi_harness import manifests

from ailab.platform.model import SECRET_PATTERN
from ailab.platform.podsecurity import HOST_ACCESS, pod_spec

# Privileged Helm values only in the charts of podsecurity.HOST_ACCESS (the one table of exceptions, with reasons).
PRIVILEGED_RELEASES = {
    h.source.removeprefix("helm:")
    for h in HOST_ACCESS.values()
    if h.source.startswith("helm:") and "privileged" in h.allows
}
SECRET_KEY = re.compile(r"(password|passwd|secret_key|secretkey|token)$", re.I)


def containers(plans_by_week) -> Iterator[tuple[int, str, str, dict[str, Any]]]:
    """(week, workload name, container name, container) for every container of every pod template."""
    for week, (_, plans) in plans_by_week.items():
        for m in manifests(plans):
            pod = pod_spec(m)
            if pod is None:
                continue
            for c in pod.get("initContainers", []) + pod["containers"]:
                yield week, m["metadata"]["name"], c["name"], c


def walk(value: Any, path: str = "") -> Iterator[tuple[str, Any]]:
    if isinstance(value, dict):
        for k, v in value.items():
            yield from walk(v, f"{path}.{k}")
    elif isinstance(value, list):
        for i, v in enumerate(value):
            yield from walk(v, f"{path}[{i}]")
    yield path, value


def test_every_container_has_requests_and_limits(plans_by_week) -> None:
    bad = [
        (w, n, c)
        for w, n, c, spec in containers(plans_by_week)
        if not all(
            spec.get("resources", {}).get(k, {}).get(r) for k in ("requests", "limits") for r in ("cpu", "memory")
        )
    ]
    assert bad == []


def test_gpu_requests_equal_limits(plans_by_week) -> None:
    gpu = [
        (n, c, s["resources"]) for _, n, c, s in containers(plans_by_week) if "nvidia.com/gpu" in str(s["resources"])
    ]
    assert gpu  # Triton and the smoke test ask for GPUs
    for name, cname, res in gpu:
        assert res["requests"].get("nvidia.com/gpu") == res["limits"].get("nvidia.com/gpu"), (name, cname)


def test_images_are_pinned(plans_by_week) -> None:
    images = {s["image"] for _, _, _, s in containers(plans_by_week)}
    for _, (_, plans) in plans_by_week.items():
        for p in plans:
            for r in p.releases:
                images |= {v for path, v in walk(r.values) if isinstance(v, str) and path.endswith((".image", ".tag"))}
    for image in images:
        tag = image.rsplit("/", 1)[-1].partition(":")[2]
        assert tag and tag != "latest", image


def test_helm_values_enable_privileged_only_for_gpu_charts(plans_by_week) -> None:
    for _, (_, plans) in plans_by_week.items():
        for p in plans:
            for r in p.releases:
                flagged = [path for path, v in walk(r.values) if path.endswith(".privileged") and v is True]
                assert not flagged or r.key in PRIVILEGED_RELEASES, (r.key, flagged)


def test_no_plaintext_secrets(plans_by_week) -> None:
    for week, (_, plans) in plans_by_week.items():
        docs = [m for m in manifests(plans)] + [r.values for p in plans for r in p.releases]
        for m in manifests(plans):
            if m["kind"] == "Secret":
                for key, value in (m.get("stringData") or {}).items():
                    if SECRET_KEY.search(key) or "secret_key" in value:
                        assert re.search(SECRET_PATTERN, value), f"week {week}: Secret {m['metadata']['name']}.{key}"
                assert "data" not in m  # base64 is not encryption
        for doc in docs:
            for path, value in walk(doc):
                leaf = path.rsplit(".", 1)[-1]
                if isinstance(value, str) and SECRET_KEY.search(leaf):
                    assert re.fullmatch(SECRET_PATTERN, value), f"week {week}: {path} = {value!r}"
                if isinstance(value, dict) and SECRET_KEY.search(str(value.get("name", ""))) and "value" in value:
                    pytest.fail(f"week {week}: env {value['name']} set in plain text at {path}")
