"""Delivery component: Argo CD with an Application syncing the week's rendered manifests (`lab render -o`)."""

from __future__ import annotations

from typing import Any

from ailab.platform.config import StackSettings
from ailab.platform.model import HelmRelease, Plan, PlanInputs, meta

ARGO_NS = "argocd"


def application(s: StackSettings, ns: str) -> dict[str, Any]:
    """Application for deploy/weekNN (written by `lab render weekNN -o deploy/weekNN` and committed).

    helm/ (release values, node patches, kind config) and secrets/ (password placeholders) are not synced:
    `pulumi up` installs the releases and generates the passwords."""
    return {
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "Application",
        "metadata": meta(f"ailab-week{s.week:02d}", ARGO_NS),
        "spec": {
            "project": "default",
            "source": {
                "repoURL": s.delivery.repo_url,
                "targetRevision": s.delivery.revision,
                "path": f"deploy/week{s.week:02d}",
                "directory": {"recurse": True, "exclude": "{helm/*,secrets/*}"},
            },
            "destination": {"server": "https://kubernetes.default.svc", "namespace": ns},
            # manual sync: the same objects are also managed by `pulumi up`; syncing is the d27 exercise
            "syncPolicy": {"syncOptions": ["CreateNamespace=true"]},
        },
    }


def plan(s: StackSettings, at: PlanInputs) -> Plan:
    """Delivery component for the stack's settings."""
    ns = at.namespace
    p = Plan("delivery", "ailab:delivery:ArgoCD")
    p.releases.append(HelmRelease("argo-cd", ARGO_NS, {"configs": {"params": {"server.insecure": True}}}))
    p.manifests.append(application(s, ns))
    return p
