"""Argo CD: an Application for a folder of a Git repository, a pushed change and how long until the cluster runs
it, a bad change and the rollback (a pushed revert), and a Jenkins build that triggers the deployment.

The Application syncs `workloads/cluster/gitops_demo/` (a small Deployment) into the run's own namespace with
automated sync. Changes are commits pushed from a clone you give (`git_clone`, on the branch `revision`): pushes
cannot be taken back, so use a scratch branch; the rollback run ends with the original image pushed back.
Times come from sampled Application status (workloads/cluster/convergence.py).
"""

from __future__ import annotations

import subprocess
import time
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

import yaml
from pydantic import Field

from ailab.contract import Context, Output, Skip, Table
from workloads.cluster.convergence import argo_synced, first_true
from workloads.cluster.run import needs, on_stack
from workloads.cluster.session import ClusterParams, ClusterSession

APP = ("argoproj.io/v1alpha1", "Application")
DEMO = "workloads/cluster/gitops_demo"


class GitopsParams(ClusterParams):
    repo_url: str | None = Field(default=None, description="Git URL Argo CD reads (default: the stack's Application's)")
    revision: str = Field(default="HEAD", description="branch Argo CD follows and the runner pushes to")
    path: str = Field(default=DEMO, description="folder of manifests in the repository")
    git_clone: str | None = Field(default=None, description="local clone of repo_url with push access")
    argocd_namespace: str = "argocd"
    refresh: bool = Field(default=True, description="ask Argo CD to refresh at once instead of its 3 min poll")
    timeout_s: float = Field(default=600, gt=0)


def _git(clone: Path, *args: str) -> str:
    p = subprocess.run(["git", "-C", str(clone), *args], capture_output=True, text=True, timeout=120, check=False)
    if p.returncode != 0:
        raise RuntimeError(f"git {' '.join(args)} in {clone}: {(p.stderr or p.stdout).strip()[-400:]}")
    return p.stdout.strip()


def change(clone: Path, path: str, branch: str, edit: dict[str, Any], message: str) -> str:
    """Edit the demo Deployment (annotation and/or image), commit, push; returns the new commit."""
    f = clone / path / "deployment.yaml"
    doc = yaml.safe_load(f.read_text(encoding="utf-8"))
    if "annotation" in edit:
        doc["metadata"].setdefault("annotations", {})["lab.ailab.dev/change"] = edit["annotation"]
    if "image" in edit:
        doc["spec"]["template"]["spec"]["containers"][0]["image"] = edit["image"]
    f.write_text(yaml.safe_dump(doc, sort_keys=False), encoding="utf-8")
    _git(clone, "add", str(f.relative_to(clone)))
    _git(clone, "commit", "-m", message)
    _git(clone, "push", "origin", f"HEAD:{branch}" if branch != "HEAD" else "HEAD")
    return _git(clone, "rev-parse", "HEAD")


def application(p: GitopsParams, name: str, repo: str, dest_ns: str) -> dict[str, Any]:
    return {
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "Application",
        "metadata": {
            "name": name,
            "namespace": p.argocd_namespace,
            "finalizers": ["resources-finalizer.argocd.argoproj.io"],
        },  # deleting it removes what it made
        "spec": {
            "project": "default",
            "source": {"repoURL": repo, "targetRevision": p.revision, "path": p.path},
            "destination": {"server": "https://kubernetes.default.svc", "namespace": dest_ns},
            "syncPolicy": {"automated": {"prune": True, "selfHeal": True}},
        },
    }


def _status(s: ClusterSession, p: GitopsParams, name: str) -> dict[str, Any]:
    return (s.get(*APP, name, p.argocd_namespace) or {}).get("status") or {}


def _watch(
    s: ClusterSession, p: GitopsParams, name: str, since: float, revision: str | None, healthy: bool = True
) -> tuple[float | None, list[tuple[float, Any]]]:
    """Sample the Application until it is Synced (and Healthy) at `revision`; seconds from `since`."""
    if p.refresh:
        s.patch(*APP, name, p.argocd_namespace, {"metadata": {"annotations": {"argocd.argoproj.io/refresh": "normal"}}})
    samples: list[tuple[float, Any]] = []

    def done(st: dict[str, Any]) -> bool:
        if healthy:
            return argo_synced(st, revision)
        return (st.get("sync") or {}).get("revision") == revision

    def check() -> bool:
        samples.append((time.time(), _status(s, p, name)))
        return done(samples[-1][1])

    try:
        s.wait(f"Application {name} at {revision or 'its revision'}", check, p.timeout_s, poll_s=2.0)
    except TimeoutError:
        return None, samples
    return first_true(samples, since, done), samples


def _repo(s: ClusterSession, p: GitopsParams, view: Any) -> str:
    s.require_kinds([(*APP, "Argo CD")])
    if p.repo_url:
        return p.repo_url
    apps = view.find("Application")
    if not apps:
        raise Skip(
            f"week {view.week:02d}'s stack has no Argo CD Application to take the repository from: --set repo_url=..."
        )
    return apps[0]["spec"]["source"]["repoURL"]


def argo_app(ctx: Context, p: GitopsParams) -> Output:
    """An Application for the demo folder: time from creation to Synced + Healthy, and what it deployed."""
    with on_stack(ctx, p, needs.ARGOCD, needs.GIT) as (s, view):
        repo = _repo(s, p, view)
        name = f"ailab-{s.namespace[-16:]}"
        t0 = time.time()
        s.apply(application(p, name, repo, s.namespace))
        took, _ = _watch(s, p, name, t0, None)
        st = _status(s, p, name)
        deployed = s.get("apps/v1", "Deployment", "gitops-demo")
    t = Table.of(
        "application",
        [
            ("repo", ""),
            ("path", ""),
            ("revision", ""),
            ("synced_after", "s"),
            ("sync", ""),
            ("health", ""),
            ("ready_replicas", "pods"),
        ],
    )
    t.add(
        repo,
        p.path,
        (st.get("sync") or {}).get("revision", "-")[:12],
        round(took, 1) if took is not None else "-",
        (st.get("sync") or {}).get("status", "-"),
        (st.get("health") or {}).get("status", "-"),
        ((deployed or {}).get("status") or {}).get("readyReplicas", 0),
    )
    return Output(tables=[t])


def _clone(p: GitopsParams) -> Path:
    if not p.git_clone:
        raise Skip(f"needs {needs.GIT}")
    clone = Path(p.git_clone).expanduser()
    if not (clone / ".git").exists():
        raise ValueError(f"git_clone {p.git_clone!r}: not a Git clone (no .git)")
    return clone


def argo_change(ctx: Context, p: GitopsParams) -> Output:
    """A pushed change to the demo folder: seconds from the push until Argo CD runs it (Synced + Healthy)."""
    with on_stack(ctx, p, needs.ARGOCD, needs.GIT) as (s, view):
        clone = _clone(p)
        repo = _repo(s, p, view)
        name = f"ailab-{s.namespace[-16:]}"
        s.apply(application(p, name, repo, s.namespace))
        _watch(s, p, name, time.time(), None)
        t0 = time.time()
        rev = change(clone, p.path, p.revision, {"annotation": f"change-{int(t0)}"}, "lab: d27 change to sync")
        took, _ = _watch(s, p, name, t0, rev)
        d = s.get("apps/v1", "Deployment", "gitops-demo") or {}
    t = Table.of("change", [("commit", ""), ("synced_after_push", "s"), ("annotation_in_cluster", "")])
    t.add(
        rev[:12],
        round(took, 1) if took is not None else "not within timeout",
        d.get("metadata", {}).get("annotations", {}).get("lab.ailab.dev/change", "-"),
    )
    return Output(tables=[t], notes=[f"refresh requested at once: {p.refresh} (without it Argo CD polls every 3 min)"])


def argo_rollback(ctx: Context, p: GitopsParams) -> Output:
    """A good change (switch time), a bad image pushed (Degraded), then a pushed revert: time to Healthy again."""
    rows = Table.of("versions", [("step", ""), ("commit", ""), ("synced", "s"), ("healthy", "s"), ("health", "")])
    with on_stack(ctx, p, needs.ARGOCD, needs.GIT) as (s, view):
        clone = _clone(p)
        repo = _repo(s, p, view)
        name = f"ailab-{s.namespace[-16:]}"
        s.apply(application(p, name, repo, s.namespace))
        _watch(s, p, name, time.time(), None)
        good_image = yaml.safe_load((clone / p.path / "deployment.yaml").read_text())["spec"]["template"]["spec"][
            "containers"
        ][0]["image"]
        for step, edit in (
            ("switch", {"annotation": f"switch-{int(time.time())}"}),
            ("bad image", {"image": good_image.rsplit(":", 1)[0] + ":0.0.0-does-not-exist"}),
            ("rollback (revert)", {"image": good_image}),
        ):
            t0 = time.time()
            rev = change(clone, p.path, p.revision, edit, f"lab: d27 {step}")
            synced, _samples = _watch(s, p, name, t0, rev, healthy=False)
            healthy = None
            if step != "bad image":
                healthy, _ = _watch(s, p, name, t0, rev)
            else:
                time.sleep(30)  # let the bad pods fail to pull
            rows.add(
                step,
                rev[:12],
                round(synced, 1) if synced is not None else "-",
                round(healthy, 1) if healthy is not None else "-",
                (_status(s, p, name).get("health") or {}).get("status", "-"),
            )
    return Output(
        tables=[rows],
        notes=["rollback here is GitOps-style (a pushed revert); `argocd app rollback` would need automated sync off"],
    )


class JenkinsParams(GitopsParams):
    jenkins_url: str | None = Field(default=None, description="e.g. https://jenkins.example/")
    jenkins_job: str | None = Field(default=None, description="job that builds the image and pushes the tag to Git")
    jenkins_token_env: str = Field(default="JENKINS_AUTH", description="env var holding user:api-token")


def jenkins_deploy(ctx: Context, p: JenkinsParams) -> Output:
    """Trigger the Jenkins job, wait for its build, then time until Argo CD has synced the commit it pushed."""
    import base64
    import json
    import os

    with on_stack(ctx, p, needs.ARGOCD, needs.GIT, needs.JENKINS) as (s, view):
        if not (p.jenkins_url and p.jenkins_job):
            raise Skip(f"needs {needs.JENKINS}")
        repo = _repo(s, p, view)
        name = f"ailab-{s.namespace[-16:]}"
        s.apply(application(p, name, repo, s.namespace))
        _watch(s, p, name, time.time(), None)
        before = (_status(s, p, name).get("sync") or {}).get("revision")
        auth = os.environ.get(p.jenkins_token_env, "")
        headers = {"Authorization": "Basic " + base64.b64encode(auth.encode()).decode()} if auth else {}
        job = f"{p.jenkins_url.rstrip('/')}/job/{urllib.parse.quote(p.jenkins_job)}"
        t0 = time.time()
        urllib.request.urlopen(urllib.request.Request(f"{job}/build", method="POST", headers=headers), timeout=30)

        def last_build() -> dict | None:
            with urllib.request.urlopen(
                urllib.request.Request(f"{job}/lastBuild/api/json", headers=headers), timeout=30
            ) as r:
                b = json.loads(r.read())
            return b if b.get("timestamp", 0) / 1e3 >= t0 - 5 and not b.get("building") else None

        build = s.wait("Jenkins build finished", last_build, p.timeout_s, poll_s=5.0)
        t_built = time.time()
        took, _ = _watch(s, p, name, t_built, None) if build.get("result") == "SUCCESS" else (None, [])
        after = (_status(s, p, name).get("sync") or {}).get("revision")
    t = Table.of(
        "pipeline",
        [("build", ""), ("result", ""), ("build_time", "s"), ("synced_after_build", "s"), ("revision_changed", "")],
    )
    t.add(
        build.get("number"),
        build.get("result"),
        round(build.get("duration", 0) / 1e3, 1),
        round(took, 1) if took is not None else "-",
        before != after,
    )
    return Output(tables=[t])
