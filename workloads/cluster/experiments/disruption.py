"""PodDisruptionBudget minAvailable=N: a rolling update (which a PDB does not govern) and a burst of evictions
(which it does) on a small Deployment, with the ready count sampled throughout."""

from __future__ import annotations

import threading
import time

from pydantic import Field

from ailab.contract import Column, Context, Output, Series, Table
from workloads.cluster import pods
from workloads.cluster.objects import pod_ready
from workloads.cluster.recovery import lowest
from workloads.cluster.run import on_stack
from workloads.cluster.session import ClusterParams, ClusterSession

APP = "pdb-demo"


class PdbParams(ClusterParams):
    replicas: int = Field(default=3, ge=2, le=20)
    min_available: int = Field(default=1, ge=1)
    max_unavailable: str = Field(default="100%", description="the rollout's maxUnavailable (a PDB does not limit it)")
    timeout_s: float = Field(default=300, gt=0)


def demo_deployment(image: str, replicas: int, max_unavailable: str) -> dict:
    pod = pods.python_pod(
        image,
        APP,
        "import http.server as h; h.test(h.SimpleHTTPRequestHandler, port=8080, bind='0.0.0.0')",
        {"requests": {"cpu": "20m", "memory": "64Mi"}, "limits": {"cpu": "100m", "memory": "64Mi"}},
    )
    spec = pod["spec"]
    spec.pop("restartPolicy")
    spec["containers"][0]["readinessProbe"] = {"tcpSocket": {"port": 8080}, "periodSeconds": 1}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": APP},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": APP}},
            "strategy": {"rollingUpdate": {"maxUnavailable": max_unavailable, "maxSurge": 0}},
            "template": {"metadata": {"labels": {"app": APP}}, "spec": spec},
        },
    }


def _ready(s: ClusterSession) -> int:
    return sum(1 for x in s.pods(f"app={APP}") if pod_ready(x))


def pdb_drill(ctx: Context, p: PdbParams) -> Output:
    """Rolling update vs evictions under a PDB: lowest ready count during each, evictions allowed/refused."""
    if p.min_available > p.replicas:
        raise ValueError(f"min_available {p.min_available} > replicas {p.replicas}: the PDB could never be met")
    samples: list[tuple[float, int]] = []
    stop = threading.Event()
    with on_stack(ctx, p) as (s, view):
        s.apply(demo_deployment(view.image("inference"), p.replicas, p.max_unavailable))
        s.apply(
            {
                "apiVersion": "policy/v1",
                "kind": "PodDisruptionBudget",
                "metadata": {"name": APP},
                "spec": {"minAvailable": p.min_available, "selector": {"matchLabels": {"app": APP}}},
            }
        )
        s.wait_rollout(APP, timeout_s=p.timeout_s)

        def watch() -> None:
            while not stop.is_set():
                samples.append((time.time(), _ready(s)))
                time.sleep(0.5)

        watcher = threading.Thread(target=watch, daemon=True)
        watcher.start()
        t_roll = time.time()
        s.patch(
            "apps/v1",
            "Deployment",
            APP,
            s.namespace,
            {"spec": {"template": {"metadata": {"annotations": {"lab.ailab.dev/restart": str(t_roll)}}}}},
        )
        s.wait_rollout(APP, timeout_s=p.timeout_s)
        t_evict = time.time()
        results = [s.api.evict(x["metadata"]["name"], s.namespace) for x in s.pods(f"app={APP}")]
        s.wait("Deployment back to full", lambda: _ready(s) >= p.replicas, p.timeout_s)
        stop.set()
        watcher.join()
    t = Table.of(
        "drill",
        [
            ("phase", ""),
            ("lowest_ready", "pods"),
            ("min_available", "pods"),
            ("allowed", "evictions"),
            ("refused", "evictions"),
            ("pdb_held", ""),
        ],
    )
    low_roll = lowest([x for x in samples if x[0] < t_evict], t_roll)
    low_evict = lowest(samples, t_evict)
    allowed = sum(1 for ok, _ in results if ok)
    t.add("rolling update", low_roll, p.min_available, "-", "-", "not governed by a PDB")
    t.add(
        "evict all pods",
        low_evict,
        p.min_available,
        allowed,
        len(results) - allowed,
        "PASS" if low_evict is not None and low_evict >= p.min_available else "FAIL",
    )
    series = Series("ready_pods", x=Column("t since the rollout started", "s"), y=Column("ready", "pods"))
    for t_s, n in samples:
        series.point("ready", round(t_s - t_roll, 2), n)
    return Output(
        tables=[t], series=[series], notes=[f"refused eviction: {next((m for ok, m in results if not ok), '-')[:200]}"]
    )
