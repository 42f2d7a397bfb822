"""The week stack as runners see it: what `lab render weekNN -o DIR` writes, read back. Pure reader.

The stack's names (namespaces, the Triton Service and Deployments, the mesh's routes, the Prometheus and ingress
Services, images) come from the same plans `pulumi up -s weekNN` builds, through the rendered files, so a runner
never restates them. `render()` runs the `lab` command (a subprocess, not an import: runners may import only
`ailab.contract` from the control plane).
"""

from __future__ import annotations

import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from ailab.contract import facts, probes


class StackError(LookupError):
    """The rendered week has no such object; the message names the week and what it does turn on."""


def week_of_day(day: int) -> int:
    """The curriculum week of day `day`, from ailab/contract/facts/weeks.yaml (`days: 1-7`)."""
    for n, w in facts.weeks().weeks.items():
        lo, hi = (int(x) for x in w.days.split("-"))
        if lo <= day <= hi:
            return n
    raise ValueError(f"day {day}: in no week of weeks.yaml (allowed 1-90)")


def render(week: int, out: Path) -> Path:
    """`lab render weekNN -o out`; returns out. RuntimeError with lab's message when it fails."""
    lab = probes.venv_bin("lab")
    if lab is None:
        raise RuntimeError("the `lab` command is not installed in this environment: run `make setup`")
    p = subprocess.run(
        [lab, "render", f"week{week:02d}", "-o", str(out)], capture_output=True, text=True, timeout=120, check=False
    )
    if p.returncode != 0:
        raise RuntimeError(f"lab render week{week:02d} failed: {(p.stderr or p.stdout).strip()[-500:]}")
    return out


@dataclass
class StackView:
    week: int
    manifests: list[dict[str, Any]] = field(default_factory=list)
    releases: list[dict[str, Any]] = field(default_factory=list)

    @classmethod
    def from_dir(cls, week: int, path: Path) -> StackView:
        """Read a `lab render -o` folder: manifests from every component folder, releases from helm/releases.yaml."""
        view = cls(week)
        for f in sorted(path.rglob("*.yaml")):
            docs = [d for d in yaml.safe_load_all(f.read_text(encoding="utf-8")) if d]
            for d in docs:
                if "helmRelease" in d:
                    view.releases.append(d["helmRelease"])
                elif "apiVersion" in d and "kind" in d:
                    view.manifests.append(d)
        return view

    @classmethod
    def load(cls, week: int, workdir: Path) -> StackView:
        return cls.from_dir(week, render(week, workdir / f"render-week{week:02d}"))

    # --- what the week turns on -----------------------------------------------------------------------------

    @property
    def components(self) -> list[str]:
        return list(facts.week(self.week).cluster)

    def settings(self, component: str) -> dict[str, Any]:
        return dict(facts.week(self.week).cluster.get(component) or {})

    def has(self, component: str) -> bool:
        return component in facts.week(self.week).cluster

    def find(self, kind: str, name: str | None = None) -> list[dict[str, Any]]:
        return [m for m in self.manifests if m["kind"] == kind and name in (None, m["metadata"]["name"])]

    def one(self, kind: str, name: str) -> dict[str, Any]:
        found = self.find(kind, name)
        if not found:
            raise StackError(
                f"week {self.week:02d}'s stack has no {kind} {name!r} (it turns on: {', '.join(self.components)})"
            )
        return found[0]

    def release(self, chart: str) -> dict[str, Any]:
        for r in self.releases:
            if r["chart"] == chart:
                return r
        charts = ", ".join(sorted({r["chart"] for r in self.releases}))
        raise StackError(f"week {self.week:02d}'s stack installs no {chart!r} chart (it installs: {charts})")

    # --- the names runners use --------------------------------------------------------------------------------

    @property
    def namespace(self) -> str:
        """The lab's namespace: where the Triton Service lives."""
        return self.one("Service", "triton")["metadata"]["namespace"]

    def port(self, name: str) -> int:
        """A port of the Triton Service by name prefix (http, grpc, metrics)."""
        for p in self.one("Service", "triton")["spec"]["ports"]:
            if p["name"].split("-")[0] == name:
                return int(p["port"])
        raise StackError(f"the triton Service has no {name!r} port")

    @property
    def deployments(self) -> list[str]:
        """Triton Deployments (triton-stable, triton-canary when the week has a canary)."""
        return sorted(
            m["metadata"]["name"] for m in self.find("Deployment") if m["metadata"]["name"].startswith("triton")
        )

    @property
    def model(self) -> str:
        return facts.week(self.week).models[0]

    def prometheus(self) -> tuple[str, str, int]:
        """(namespace, Service, port) of the stack's Prometheus (kube-prometheus-stack's naming)."""
        r = self.release("kube-prometheus-stack")
        return r["namespace"], f"{r['name']}-prometheus", 9090

    def ingress(self) -> tuple[str, str, int]:
        """(namespace, Service, port) of the Istio ingress gateway (the gateway chart names its Service after
        the release)."""
        r = self.release("gateway")
        return r["namespace"], r["name"], 80

    def image(self, name: str) -> str:
        """A lab workload image reference (`inference`, `triton-models`, ...), honouring AILAB_IMAGE_REGISTRY."""
        return facts.images().ref(name)

    def pinned(self, name: str) -> str:
        return facts.images().pinned(name)
