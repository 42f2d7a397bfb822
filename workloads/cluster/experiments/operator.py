"""The lab's ModelDeployment operator (workloads/operator, kopf) on the cluster: a custom resource becomes a
Deployment, a hand-made change to that Deployment is (or is not) put back, its metrics, and how many resources it
reconciles per second. The CRD's identity comes from ailab/contract/facts/operator.yaml."""

from __future__ import annotations

import contextlib
import time
from concurrent.futures import ThreadPoolExecutor

from pydantic import Field

from ailab.contract import Context, Output, Skip, Table, facts
from workloads.cluster.convergence import throughput
from workloads.cluster.run import needs, on_stack
from workloads.cluster.session import ClusterParams, ClusterSession

OP = facts.operator()
CR = (OP.api_version, OP.kind)


class OperatorParams(ClusterParams):
    model: str = "mlp"
    replicas: int = Field(default=0, ge=0, le=16, description="replicas per resource (0: no GPU needed)")
    gpus: int = Field(default=0, ge=0, le=8)
    count: int = Field(default=1, ge=1, le=2000, description="resources created at once (load test)")
    workers: int = Field(default=16, ge=1, le=256, description="parallel create calls")
    timeout_s: float = Field(default=300, gt=0)


def resource(name: str, p: OperatorParams) -> dict:
    return {
        "apiVersion": OP.api_version,
        "kind": OP.kind,
        "metadata": {"name": name},
        "spec": {"model": p.model, "replicas": p.replicas, "gpus": p.gpus},
    }


def _check(s: ClusterSession) -> None:
    s.require_kinds([(*CR, needs.OPERATOR)])
    ops = s.api.list("apps/v1", "Deployment", None, "app=modeldeployment-operator")
    if not ops:
        raise Skip(f"the CRD is installed but no operator Deployment runs: {needs.OPERATOR}")


def reconcile(ctx: Context, p: OperatorParams) -> Output:
    """Create ModelDeployments: seconds until each Deployment md-<name> exists and the status the operator wrote."""
    with on_stack(ctx, p, needs.OPERATOR) as (s, _):
        _check(s)
        created, seen = _create_and_watch(s, p)
        rows = []
        for name in sorted(created)[:20]:
            cr = s.get(*CR, name) or {}
            d = s.get("apps/v1", "Deployment", f"md-{name}") or {}
            st = (cr.get("status") or {}).get("reconcile") or {}
            owner = [o.get("kind") for o in d.get("metadata", {}).get("ownerReferences", [])]
            rows.append(
                (
                    name,
                    round(seen[name] - created[name], 3) if name in seen else "-",
                    st.get("phase", "-"),
                    d.get("spec", {}).get("replicas", "-"),
                    ", ".join(owner) or "-",
                )
            )
    t = Table.of(
        "resources", [("resource", ""), ("deployment_after", "s"), ("phase", ""), ("replicas", ""), ("owned_by", "")]
    )
    for r in rows:
        t.add(*r)
    return Output(tables=[t])


def _create_and_watch(s: ClusterSession, p: OperatorParams) -> tuple[dict[str, float], dict[str, float]]:
    names = [f"lab-{i:04d}" for i in range(p.count)]
    created: dict[str, float] = {}

    def make(n: str) -> None:
        s.apply(resource(n, p))
        created[n] = time.time()

    with ThreadPoolExecutor(p.workers) as pool:
        list(pool.map(make, names))
    seen: dict[str, float] = {}

    def all_seen() -> bool:
        have = {d["metadata"]["name"] for d in s.api.list("apps/v1", "Deployment", s.namespace)}
        now = time.time()
        for n in names:
            if n not in seen and f"md-{n}" in have:
                seen[n] = now
        return len(seen) == len(names)

    with contextlib.suppress(TimeoutError):  # reported as fewer done
        s.wait(f"{len(names)} Deployments", all_seen, p.timeout_s, poll_s=0.5)
    return created, seen


def drift(ctx: Context, p: OperatorParams) -> Output:
    """Change the managed Deployment's replicas by hand: does the operator put spec.replicas back, and when."""
    with on_stack(ctx, p, needs.OPERATOR) as (s, _):
        _check(s)
        s.apply(resource("lab-drift", p))
        s.wait("Deployment md-lab-drift", lambda: s.get("apps/v1", "Deployment", "md-lab-drift"), p.timeout_s)
        t0 = time.time()
        s.api.patch("apps/v1", "Deployment", "md-lab-drift", s.namespace, {"spec": {"replicas": p.replicas + 1}})
        try:
            s.wait(
                "replicas put back",
                lambda: (
                    (s.get("apps/v1", "Deployment", "md-lab-drift") or {}).get("spec", {}).get("replicas") == p.replicas
                ),
                p.timeout_s,
                poll_s=1.0,
            )
            back = round(time.time() - t0, 2)
        except TimeoutError:
            back = None
    t = Table.of("drift", [("changed", ""), ("put_back_after", "s"), ("result", "")])
    t.add(
        f"replicas {p.replicas} -> {p.replicas + 1}",
        back if back is not None else f"not within {p.timeout_s:g}",
        "reconciled" if back is not None else "NOT reconciled",
    )
    return Output(
        tables=[t],
        notes=[
            "the controller reacts to ModelDeployment events (create/update/resume); a "
            "change to the Deployment alone reaches it only if it watches its children"
        ],
    )


def metrics(ctx: Context, p: OperatorParams) -> Output:
    """The operator pod's metrics endpoint (a container port named metrics), scraped once after a reconcile."""
    with on_stack(ctx, p, needs.OPERATOR) as (s, _):
        _check(s)
        ops = s.api.list("v1", "Pod", None, "app=modeldeployment-operator")
        ports = [
            pt for c in ops[0]["spec"]["containers"] for pt in c.get("ports", []) if "metric" in pt.get("name", "")
        ]
        if not ports:
            raise Skip(
                "the lab's operator (workloads/operator/controller.py) exposes no metrics port yet: "
                "exporting metrics is the exercise (d44.e4); nothing to measure until it does"
            )
        s.apply(resource("lab-metrics", p))
        with s.forward(
            f"pod/{ops[0]['metadata']['name']}", ports[0]["containerPort"], ops[0]["metadata"]["namespace"]
        ) as port:
            import urllib.request

            text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10).read().decode()
    t = Table.of("metrics", [("metric", ""), ("value", "")])
    for ln in text.splitlines():
        if ln and not ln.startswith("#"):
            name, _, value = ln.rpartition(" ")
            t.add(name, value)
    return Output(tables=[t])


def load(ctx: Context, p: OperatorParams) -> Output:
    """`count` resources created at once: Deployments per second and the latency from create to Deployment."""
    with on_stack(ctx, p, needs.OPERATOR) as (s, _):
        _check(s)
        created, seen = _create_and_watch(s, p)
    tp = throughput(created, seen)
    t = Table.of("throughput", [("resources", ""), ("done", ""), ("p50", "s"), ("p99", "s"), ("rate", "resources/s")])
    t.add(tp.objects, tp.done, round(tp.p50_s, 3), round(tp.p99_s, 3), round(tp.per_s, 2))
    return Output(
        tables=[t],
        notes=[
            f"{p.workers} parallel creators; replicas {p.replicas} per resource; times sampled every 0.5 s (resolution)"
        ],
    )
