"""StatefulSets and DaemonSets: a node-level log collector on every node, MySQL as a StatefulSet with one
PersistentVolumeClaim per pod, scale-out with stable names, the ordered rolling update, and the same checks on a
Deployment for contrast. Read from pods, PVCs and the controllers' events (workloads/cluster/ordering.py)."""

from __future__ import annotations

import time
from typing import Any

from pydantic import Field

from ailab.contract import Context, Output, Skip, Table
from workloads.cluster import ordering
from workloads.cluster.objects import parse_events, pod_ready
from workloads.cluster.run import needs, on_stack, weeks_with
from workloads.cluster.session import ClusterParams, ClusterSession

STS = "mysql"


class StatefulParams(ClusterParams):
    image: str = Field(default="docker.io/library/mysql:8.4.3", description="MySQL image")
    replicas: int = Field(default=2, ge=1, le=10)
    scale_to: int = Field(default=4, ge=1, le=10)
    storage: str = Field(default="1Gi", pattern=r"^\d+(Mi|Gi)$")
    storage_class: str | None = Field(default=None, description="default: the cluster's default StorageClass")
    timeout_s: float = Field(default=600, gt=0)


def mysql(p: StatefulParams, replicas: int, kind: str = "StatefulSet") -> list[dict[str, Any]]:
    """A headless Service and MySQL as a StatefulSet (a PVC per pod) or, for contrast, a Deployment (no PVC)."""
    pod = {
        "metadata": {"labels": {"app": STS if kind == "StatefulSet" else f"{STS}-deploy"}},
        "spec": {
            "securityContext": {
                "runAsNonRoot": True,
                "runAsUser": 999,
                "runAsGroup": 999,
                "fsGroup": 999,
                "seccompProfile": {"type": "RuntimeDefault"},
            },
            "automountServiceAccountToken": False,
            "containers": [
                {
                    "name": "mysql",
                    "image": p.image,
                    "env": [{"name": "MYSQL_RANDOM_ROOT_PASSWORD", "value": "yes"}],
                    "ports": [{"name": "mysql", "containerPort": 3306}],
                    "readinessProbe": {"tcpSocket": {"port": "mysql"}, "periodSeconds": 2},
                    "resources": {
                        "requests": {"cpu": "100m", "memory": "512Mi"},
                        "limits": {"cpu": "1", "memory": "1Gi"},
                    },
                    "securityContext": {"allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]}},
                    "volumeMounts": [{"name": "data", "mountPath": "/var/lib/mysql"}],
                }
            ],
        },
    }
    app = pod["metadata"]["labels"]["app"]
    if kind == "StatefulSet":
        claim: dict[str, Any] = {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": p.storage}}}
        if p.storage_class:
            claim["storageClassName"] = p.storage_class
        return [
            {
                "apiVersion": "v1",
                "kind": "Service",
                "metadata": {"name": STS},
                "spec": {"clusterIP": "None", "selector": {"app": STS}, "ports": [{"name": "mysql", "port": 3306}]},
            },
            {
                "apiVersion": "apps/v1",
                "kind": "StatefulSet",
                "metadata": {"name": STS},
                "spec": {
                    "serviceName": STS,
                    "replicas": replicas,
                    "selector": {"matchLabels": {"app": STS}},
                    "template": pod,
                    "volumeClaimTemplates": [{"metadata": {"name": "data"}, "spec": claim}],
                },
            },
        ]
    pod["spec"]["volumes"] = [{"name": "data", "emptyDir": {}}]
    return [
        {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": app},
            "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": app}}, "template": pod},
        }
    ]


def _ready_count(s: ClusterSession, app: str) -> int:
    return sum(1 for x in s.pods(f"app={app}") if pod_ready(x))


def deploy(s: ClusterSession, p: StatefulParams, replicas: int, kind: str = "StatefulSet") -> None:
    for m in mysql(p, replicas, kind):
        s.apply(m)
    app = STS if kind == "StatefulSet" else f"{STS}-deploy"
    s.wait(f"{kind} {app} ready", lambda: _ready_count(s, app) >= replicas, p.timeout_s, poll_s=3.0)


def pvc_table(s: ClusterSession) -> Table:
    t = Table.of(
        "pvcs", [("pod", ""), ("claim", ""), ("phase", ""), ("capacity", ""), ("storage_class", ""), ("volume", "")]
    )
    claims = {c["metadata"]["name"]: c for c in s.api.list("v1", "PersistentVolumeClaim", s.namespace)}
    for pod in sorted(s.pods(f"app={STS}"), key=lambda x: ordering.ordinal(x["metadata"]["name"])):
        vol = next((v for v in pod["spec"].get("volumes", []) if v.get("persistentVolumeClaim")), None)
        name = vol["persistentVolumeClaim"]["claimName"] if vol else "-"
        c = claims.get(name, {})
        st = c.get("status") or {}
        t.add(
            pod["metadata"]["name"],
            name,
            st.get("phase", "-"),
            (st.get("capacity") or {}).get("storage", "-"),
            (c.get("spec") or {}).get("storageClassName", "-"),
            (c.get("spec") or {}).get("volumeName", "-"),
        )
    return t


def statefulset_pvcs(ctx: Context, p: StatefulParams) -> Output:
    """MySQL as a StatefulSet: one PVC per pod (data-mysql-N), bound, with its volume and class."""
    with on_stack(ctx, p, needs.STORAGE) as (s, _):
        deploy(s, p, p.replicas)
        t = pvc_table(s)
    return Output(tables=[t])


def statefulset_scale(ctx: Context, p: StatefulParams) -> Output:
    """Scale replicas -> scale_to: names stay mysql-0..N-1, new pods come up in ordinal order, old PVCs stay."""
    with on_stack(ctx, p, needs.STORAGE) as (s, _):
        deploy(s, p, p.replicas)
        before = {x["metadata"]["name"]: x["metadata"]["uid"] for x in s.pods(f"app={STS}")}
        claims_before = {
            c["metadata"]["name"]: c["metadata"]["uid"] for c in s.api.list("v1", "PersistentVolumeClaim", s.namespace)
        }
        s.patch("apps/v1", "StatefulSet", STS, s.namespace, {"spec": {"replicas": p.scale_to}})
        s.wait(f"{p.scale_to} ready", lambda: _ready_count(s, STS) >= p.scale_to, p.timeout_s, poll_s=3.0)
        pods = s.pods(f"app={STS}")
        claims_after = {
            c["metadata"]["name"]: c["metadata"]["uid"] for c in s.api.list("v1", "PersistentVolumeClaim", s.namespace)
        }
        t = pvc_table(s)
    names = sorted(x["metadata"]["name"] for x in pods)
    order = ordering.creation_order([x for x in pods if x["metadata"]["name"] not in before])
    checks = Table.of("checks", [("check", ""), ("observed", ""), ("result", "")])
    expected = [f"{STS}-{i}" for i in range(p.scale_to)]
    checks.add("names mysql-0..N-1", ", ".join(names), "PASS" if names == expected else "FAIL")
    checks.add(
        "new pods created in ordinal order", ", ".join(order) or "-", "PASS" if ordering.monotonic(order) else "FAIL"
    )
    kept = all(claims_after.get(k) == v for k, v in claims_before.items())
    checks.add(
        "existing PVCs kept", f"{len(claims_before)} before, {len(claims_after)} after", "PASS" if kept else "FAIL"
    )
    return Output(tables=[checks, t])


def statefulset_update(ctx: Context, p: StatefulParams) -> Output:
    """A rolling update of the StatefulSet: the order pods are replaced in (highest ordinal first) and timing."""
    with on_stack(ctx, p, needs.STORAGE) as (s, _):
        deploy(s, p, p.replicas)
        t0 = time.time()
        s.patch(
            "apps/v1",
            "StatefulSet",
            STS,
            s.namespace,
            {"spec": {"template": {"metadata": {"annotations": {"lab.ailab.dev/restart": str(t0)}}}}},
        )

        def updated() -> bool:
            st = (s.get("apps/v1", "StatefulSet", STS) or {}).get("status") or {}
            return st.get("updatedReplicas") == p.replicas and st.get("currentRevision") == st.get("updateRevision")

        s.wait("rolling update done", updated, p.timeout_s, poll_s=3.0)
        took = time.time() - t0
        events = parse_events(s.events())
        pods = s.pods(f"app={STS}")
    deleted = ordering.deletion_order([e for e in events if e.t >= t0 - 1], STS)
    recreated = ordering.creation_order(pods)
    t = Table.of("update", [("deleted_in_order", ""), ("recreated_in_order", ""), ("descending", ""), ("took", "s")])
    t.add(
        ", ".join(deleted) or "-",
        ", ".join(recreated),
        "PASS" if ordering.monotonic(deleted, True) else "FAIL",
        round(took, 1),
    )
    return Output(tables=[t])


def statefulset_vs_deployment(ctx: Context, p: StatefulParams) -> Output:
    """StatefulSet vs Deployment of the same MySQL: pod names, what a deleted pod comes back as, storage."""
    t = Table.of("compare", [("property", ""), ("statefulset", ""), ("deployment", "")])
    with on_stack(ctx, p, needs.STORAGE) as (s, _):
        deploy(s, p, p.replicas)
        deploy(s, p, p.replicas, "Deployment")
        names, back = {}, {}
        for app in (STS, f"{STS}-deploy"):
            pods = s.pods(f"app={app}")
            names[app] = sorted(x["metadata"]["name"] for x in pods)
            victim = names[app][0]
            s.delete("v1", "Pod", victim)
            s.wait(
                f"{app} back to {p.replicas}",
                lambda app=app, victim=victim: (
                    _ready_count(s, app) >= p.replicas
                    and victim
                    not in {
                        x["metadata"]["name"] for x in s.pods(f"app={app}") if x["metadata"].get("deletionTimestamp")
                    }
                ),
                p.timeout_s,
                poll_s=3.0,
            )
            now = sorted(x["metadata"]["name"] for x in s.pods(f"app={app}") if pod_ready(x))
            back[app] = "same name" if victim in now else f"new name ({', '.join(sorted(set(now) - set(names[app])))})"
        claims = [c["metadata"]["name"] for c in s.api.list("v1", "PersistentVolumeClaim", s.namespace)]
    t.add("pod names", ", ".join(names[STS]), ", ".join(names[f"{STS}-deploy"]))
    t.add("deleted pod comes back as", back[STS], back[f"{STS}-deploy"])
    t.add("storage", f"PVC per pod ({', '.join(sorted(claims))})", "emptyDir: lost with the pod")
    t.add("update order", "one at a time, highest ordinal first", "by maxSurge/maxUnavailable, any order")
    return Output(
        tables=[t],
        notes=[
            "the update-order row states the controllers' documented behaviour; statefulset_update (d41.e4) measures it"
        ],
    )


def daemonset(ctx: Context, p: ClusterParams) -> Output:
    """The stack's log-collector DaemonSet: one ready pod on every node it should run on."""
    with on_stack(ctx, p) as (s, view):
        found = view.find("DaemonSet")
        collectors = [d for d in found if "log" in d["metadata"]["name"]]
        if not collectors:
            raise Skip(
                f"week {view.week:02d}'s stack has no log collector DaemonSet "
                f"(objects.logCollector: {weeks_with('objects', 'logCollector')})"
            )
        d = collectors[0]
        ns, name = d["metadata"]["namespace"], d["metadata"]["name"]
        live = s.get("apps/v1", "DaemonSet", name, ns)
        if live is None:
            raise Skip(f"DaemonSet {ns}/{name} is not deployed: deploy week {view.week:02d}'s stack")
        sel = ",".join(f"{k}={v}" for k, v in d["spec"]["selector"]["matchLabels"].items())
        pods = s.pods(sel, ns)
        nodes = [n["metadata"]["name"] for n in s.nodes()]
    by_node = {x["spec"].get("nodeName"): x for x in pods}
    t = Table.of("nodes", [("node", ""), ("pod", ""), ("ready", "")])
    for n in nodes:
        x = by_node.get(n)
        t.add(n, x["metadata"]["name"] if x else "-", pod_ready(x) if x else False)
    st = live.get("status") or {}
    summary = Table.of("daemonset", [("desired", "pods"), ("ready", "pods"), ("nodes", "")])
    summary.add(st.get("desiredNumberScheduled", 0), st.get("numberReady", 0), len(nodes))
    return Output(tables=[summary, t])
