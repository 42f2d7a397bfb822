"""A week's stack as YAML, from the same plans `pulumi up` builds: manifests, Helm releases (chart, version,
values), node label patches and, for kind, the cluster config."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml

from ailab.contract.paths import REPO_ROOT
from ailab.platform import cluster
from ailab.platform.config import StackSettings
from ailab.platform.model import Plan
from ailab.platform.plan import plan_stack
from ailab.platform.weeks import settings, stack_file


def release_doc(plan: Plan, r: Any) -> dict[str, Any]:
    """A Helm release as data: not a Kubernetes object; `pulumi up` installs it with helm.v3.Release."""
    return {
        "helmRelease": {
            "name": r.key,
            "component": plan.name,
            "namespace": r.namespace,
            "chart": r.chart.chart,
            "version": r.chart.version,
            "repo": r.chart.repo,
            "values": r.values,
        }
    }


def week_plans(week: str | int, root: Path = REPO_ROOT) -> tuple[StackSettings, list[Plan]]:
    s = settings(week, root)
    return s, plan_stack(s, stack_file(week, root).name)


def documents(s: StackSettings, plans: list[Plan]) -> list[dict[str, Any]]:
    """Every document of the week: Kubernetes manifests, then Helm releases, node patches, kind config."""
    docs: list[dict[str, Any]] = [m for p in plans for m in p.manifests]
    docs += [release_doc(p, r) for p in plans for r in p.releases]
    docs += [{"nodePatch": {"node": nl.node, "labels": nl.labels}} for p in plans for nl in p.node_labels]
    if s.cluster.target == "kind":
        docs.append(cluster.kind_config(s))
    return docs


class _Dumper(yaml.SafeDumper):
    """Plain YAML: no &anchors for dicts shared between manifests."""

    def ignore_aliases(self, data: Any) -> bool:
        return True


def _str(dumper: yaml.SafeDumper, data: str) -> yaml.ScalarNode:
    style = "|" if "\n" in data else None  # embedded config files stay readable
    return dumper.represent_scalar("tag:yaml.org,2002:str", data, style=style)


_Dumper.add_representer(str, _str)


def to_yaml(docs: list[dict[str, Any]], header: str) -> str:
    return header + "".join("---\n" + yaml.dump(d, Dumper=_Dumper, sort_keys=False) for d in docs)


def _file_name(doc: dict[str, Any]) -> str:
    kind = doc.get("kind", "doc").lower()
    name = doc.get("metadata", {}).get("name") or doc.get("name", "x")
    return re.sub(r"[^a-z0-9.-]+", "-", f"{kind}-{name}".lower()) + ".yaml"


def write_dir(s: StackSettings, plans: list[Plan], out: Path, header: str) -> list[Path]:
    """One file per manifest under <out>/<component>/ (Secrets under <out>/secrets/); releases, node patches
    and the kind config under <out>/helm/. Argo CD's Application excludes helm/ and secrets/."""
    written = []
    for p in plans:
        for m in p.manifests:
            folder = "secrets" if m["kind"] == "Secret" else p.name  # placeholders only: Argo CD skips them
            path = out / folder / _file_name(m)
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(to_yaml([m], header))
            written.append(path)
    extras = [release_doc(p, r) for p in plans for r in p.releases]
    extras += [{"nodePatch": {"node": nl.node, "labels": nl.labels}} for p in plans for nl in p.node_labels]
    if extras:
        (out / "helm").mkdir(parents=True, exist_ok=True)
        written.append(out / "helm" / "releases.yaml")
        written[-1].write_text(to_yaml(extras, header))
    if s.cluster.target == "kind":
        (out / "helm").mkdir(parents=True, exist_ok=True)
        written.append(out / "helm" / "kind-config.yaml")
        written[-1].write_text(to_yaml([cluster.kind_config(s)], header))
    return written
