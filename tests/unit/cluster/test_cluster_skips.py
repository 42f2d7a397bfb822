"""Without a cluster every cluster runner records a specific skip: where it looked for a cluster and everything
else the experiment needs. Each runner is called the way `lab run` calls it (Context + the binding's typed params)
with nothing to find: no kubeconfig file, not in a pod. No API server is faked here."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest
import yaml

from ailab.contract import Context, Skip
from ailab.contract.paths import REPO_ROOT
from ailab.curriculum.loader import runner_params_model
from workloads.cluster import kube
from workloads.cluster.stack import week_of_day

BINDINGS = yaml.safe_load((REPO_ROOT / "workloads/cluster/bindings.yaml").read_text())

# what else each runner must name (besides the cluster and the week's stack)
ALSO = {
    "scheduling:gpu_pod": ["GPU nodes"],
    "scheduling:gpu_counts": ["GPU nodes", "4 allocatable GPUs"],
    "scheduling:taints": ["GPU nodes"],
    "scheduling:node_selector": ["GPU nodes"],
    "scheduling:gpu_affinity": ["GPU nodes"],
    "scheduling:topology": ["GPU nodes", "Topology/CPU Manager"],
    "qos:oom_by_qos": [],
    "exposure:exposure_latency": [],
    "disruption:pdb_drill": [],
    "autoscaling:hpa_ramp": ["kube-prometheus-stack"],
    "autoscaling:cooldown": ["kube-prometheus-stack"],
    "autoscaling:keda_kafka": ["KEDA", "Kafka broker"],
    "node_autoscaling:cluster_autoscaler": ["Cluster Autoscaler", "GPU nodes", "metrics-server"],
    "mesh:canary_steps": ["Istio (mesh: weeks 4", "canary Deployment"],
    "mesh:version_latency": ["Istio", "canary"],
    "mesh:mirroring": ["Istio", "canary"],
    "mesh:lb_policies": ["Istio", "kube-prometheus-stack"],
    "mesh:sidecar_overhead": ["Istio", "GPU nodes"],
    "mesh:circuit_breaking": ["Istio circuit breaking (mesh.circuitBreaker: weeks 7, 13)"],
    "mesh:rate_limit": ["Istio local rate limit (mesh.rateLimit: weeks 7)"],
    "mesh:jaeger_trace": ["Jaeger"],
    "mesh:latency_distribution": ["Istio", "kube-prometheus-stack"],
    "mesh:rollback": ["Istio", "canary"],
    "gitops:argo_app": ["Argo CD (delivery: weeks 4, 13)", "Git repository"],
    "gitops:argo_change": ["Argo CD", "Git repository"],
    "gitops:argo_rollback": ["Argo CD", "Git repository"],
    "gitops:jenkins_deploy": ["Argo CD", "Jenkins job"],
    "stateful:daemonset": [],
    "stateful:statefulset_pvcs": ["StorageClass"],
    "stateful:statefulset_scale": ["StorageClass"],
    "stateful:statefulset_update": ["StorageClass"],
    "stateful:statefulset_vs_deployment": ["StorageClass"],
    "chaos:delete_pods": [],
    "operator:reconcile": ["ModelDeployment operator"],
    "operator:drift": ["ModelDeployment operator"],
    "operator:metrics": ["ModelDeployment operator"],
    "operator:load": ["ModelDeployment operator"],
    "tenancy:two_tenants": ["GPU nodes", "time-slicing or MPS"],
    "soak:soak": [],
}


def test_every_listed_experiment_is_bound_here() -> None:
    import glob

    listed = set()
    for f in glob.glob(str(REPO_ROOT / "ailab/curriculum/days/d*.yaml")):
        for e in yaml.safe_load(Path(f).read_text())["experiments"]:
            if "cluster" in (e.get("needs") or []):
                listed.add(e["id"])
    elsewhere = {"d07.e5", "d13.e3", "d14.e3"}  # measured local substitutes, bound in serving/observability
    tensorrt = {"d87.e1", "d87.e2", "d87.e5"}  # need TensorRT on the cluster: not in issue 20's list
    assert set(BINDINGS) == listed - elsewhere - tensorrt
    assert len(BINDINGS) == 71


@pytest.fixture
def nowhere(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    missing = tmp_path / "no-kubeconfig"
    monkeypatch.setenv("KUBECONFIG", str(missing))
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    return missing


@pytest.mark.parametrize("exp_id", sorted(BINDINGS))
def test_runner_skips_naming_where_it_looked_and_what_else_it_needs(exp_id: str, nowhere: Path, tmp_path: Path) -> None:
    import importlib

    b = BINDINGS[exp_id]
    module, _, func = b["runner"].partition(":")
    runner = getattr(importlib.import_module(module), func)
    params = runner_params_model(b["runner"]).model_validate(b.get("params") or {})
    ctx = Context(experiment_id=exp_id, device="cpu", quick=False, workdir=tmp_path, log=lambda _: None)
    with pytest.raises(Skip) as skip:
        runner(ctx, params)
    msg = str(skip.value)
    assert msg.startswith(
        f"needs a Kubernetes cluster (looked for: KUBECONFIG={nowhere} (no such file); "
        "in-cluster service account (not running in a pod); none reachable); this experiment also needs: "
    )
    week = (b.get("params") or {}).get("week") or week_of_day(int(exp_id[1:3]))
    assert f"the week {week:02d} stack deployed (`pulumi up -s week{week:02d}`)" in msg
    for word in ALSO[b["runner"].removeprefix("workloads.cluster.experiments.")]:
        assert word in msg, f"{exp_id}: {word!r} missing from {msg!r}"


def test_default_places_and_an_api_server_that_does_not_answer(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.delenv("KUBECONFIG", raising=False)
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    home = tmp_path / "home" / ".kube" / "config"
    assert kube.candidates(None, {}, home) == [(str(home), home), ("in-cluster service account", None)]
    assert [c[0] for c in kube.candidates(None, {"KUBECONFIG": "/a:/b"})][:2] == ["KUBECONFIG=/a", "KUBECONFIG=/b"]
    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    cfg = tmp_path / "kubeconfig"
    cfg.write_text(
        yaml.safe_dump(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "current-context": "kind-ailab",
                "clusters": [
                    {
                        "name": "kind-ailab",
                        "cluster": {"server": f"https://127.0.0.1:{port}", "insecure-skip-tls-verify": True},
                    }
                ],
                "contexts": [{"name": "kind-ailab", "context": {"cluster": "kind-ailab", "user": "u"}}],
                "users": [{"name": "u", "user": {"token": "t"}}],
            }
        )
    )
    with pytest.raises(Skip) as skip:
        kube.connect(str(cfg), also_needs=["Istio"], env={}, timeout_s=2)
    msg = str(skip.value)
    assert f"kubeconfig={cfg}, context kind-ailab (API server https://127.0.0.1:{port} not answering:" in msg
    assert msg.endswith("; this experiment also needs: Istio")
    with pytest.raises(Skip, match="context nope"):
        kube.connect(str(cfg), context="nope", env={}, timeout_s=2)


def test_the_user_guide_lists_every_experiment_with_its_runner_and_week() -> None:
    doc = (REPO_ROOT / "docs/cluster-experiments.md").read_text()
    rows = {line.split("|")[1].strip(): line for line in doc.splitlines() if line.startswith("| d")}
    assert set(rows) == set(BINDINGS)
    for exp_id, b in BINDINGS.items():
        runner = b["runner"].removeprefix("workloads.cluster.experiments.")
        week = (b.get("params") or {}).get("week") or week_of_day(int(exp_id[1:3]))
        cells = [c.strip() for c in rows[exp_id].split("|")]
        assert cells[3] == f"`{runner}`" and cells[4] == f"{week:02d}", rows[exp_id]
