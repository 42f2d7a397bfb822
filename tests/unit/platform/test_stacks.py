"""All 13 week stacks run whole through pulumi/__main__.py with their stack files, in one process.

Mocked: the Pulumi engine and the Kubernetes API (neither exists here); Helm releases are checked by their inputs.
"""

from __future__ import annotations

import pytest
from pulumi_harness import GPU_READY_HOST, fake_probe, manifests, run_program

from ailab.platform import weeks
from ailab.platform.config import WEEKS
from ailab.platform.model import CORE_GROUPS, CRD_PROVIDERS, api_group
from ailab.platform.plan import COMPONENTS
from ailab.platform.render import release_doc

RELEASE = "kubernetes:helm.sh/v3:Release"


def registered_manifests(rec) -> set[tuple[str, str, str]]:
    skip = {RELEASE, "pulumi:providers:kubernetes", "kubernetes:core/v1:NodePatch"}
    return {
        (r.inputs["kind"], r.inputs["metadata"].get("namespace", ""), r.inputs["metadata"]["name"])
        for r in rec.resources
        if r.typ.startswith("kubernetes:") and r.typ not in skip
    }


@pytest.mark.parametrize("week", list(WEEKS))
def test_stack_registers_exactly_what_render_shows(week: int, programs_by_week, plans_by_week) -> None:
    """pulumi up and lab render share one code path: same manifests, same releases with the same values."""
    rec = programs_by_week[week]
    _, plans = plans_by_week[week]
    rendered = {(m["kind"], m["metadata"].get("namespace", ""), m["metadata"]["name"]) for m in manifests(plans)}
    assert registered_manifests(rec) == rendered
    for p in plans:
        for r in p.releases:
            inputs = rec.release(r.key)
            doc = release_doc(p, r)["helmRelease"]
            assert (inputs["chart"], inputs["version"], inputs["repositoryOpts"]["repo"]) == (
                doc["chart"],
                doc["version"],
                doc["repo"],
            )
            assert inputs["namespace"] == r.namespace
    components = {r.typ for r in rec.resources if r.typ.startswith("ailab:")}
    assert components == {p.type_token for p in plans}


@pytest.mark.parametrize("week", list(WEEKS))
def test_custom_resources_wait_for_their_crds(week: int, programs_by_week) -> None:
    """Every custom resource depends on the release (or CRD) that installs its definition."""
    rec = programs_by_week[week]
    kinds = {r.inputs["kind"]: r.inputs["apiVersion"] for r in rec.resources if "kind" in r.inputs}
    checked = 0
    for kind, name, deps in rec.depends:
        group = api_group({"apiVersion": kinds[kind]})
        if group in CORE_GROUPS:
            continue
        expected = CRD_PROVIDERS.get(group)
        assert deps, f"week {week}: {kind} {name} has no depends_on"
        if expected:
            assert deps == [expected], f"week {week}: {kind} {name} depends on {deps}, not {expected}"
        checked += 1
    assert checked > 0  # every week has ServiceMonitors at least


def test_every_component_is_enabled_by_some_week(plans_by_week) -> None:
    used = {p.name for _, plans in plans_by_week.values() for p in plans if p.releases or p.manifests}
    assert set(COMPONENTS) <= used


def test_every_gpu_and_serving_feature_is_used_by_some_week(plans_by_week) -> None:
    settings = [s for s, _ in plans_by_week.values()]
    features = {
        "time-slicing": any(s.gpu.sharing and s.gpu.sharing.time_slicing for s in settings),
        "mps": any(s.gpu.sharing and s.gpu.sharing.mps for s in settings),
        "per-node config": any(s.gpu.node_configs for s in settings),
        "operator + MIG layouts": any(s.gpu.mode == "operator" and s.gpu.mig for s in settings),
        "hpa queue time": any(s.serving.hpa.queue_time_us for s in settings),
        "keda": any(s.serving.keda.enabled for s in settings),
        "mirroring": any(s.mesh.mirror.enabled for s in settings),
        "rate limit": any(s.mesh.rate_limit for s in settings),
        "federation": any(s.monitoring.federation for s in settings),
        "thanos": any(s.monitoring.thanos for s in settings),
        "autoscaler": any(s.autoscaler.enabled for s in settings),
        "k3s kubelet topology": any(s.kubelet.topology_manager_policy != "none" for s in settings),
        "operator CRD": any(s.objects.operator for s in settings),
        "log collector": any(s.objects.log_collector for s in settings),
    }
    assert all(features.values()), [k for k, v in features.items() if not v]


def test_weights_90_10_70_30_50_50_come_from_stack_files(plans_by_week) -> None:
    seen = {tuple(s.mesh.weights.values()) for s, _ in plans_by_week.values() if s.mesh.enabled}
    assert {(90, 10), (70, 30), (50, 50)} <= seen


def test_autoscaler_deploys_on_existing_cloud_clusters_only(monkeypatch: pytest.MonkeyPatch, programs_by_week) -> None:
    assert not [r for r in programs_by_week[10].of_type(RELEASE) if r.name == "cluster-autoscaler"]
    cfg = weeks.stack_config(10) | {"ailab:cluster": {"target": "existing", "context": "eks-lab"}}
    rec = run_program("week10", cfg, fake_probe({}), monkeypatch)
    values = rec.release("cluster-autoscaler")["values"]
    assert values["cloudProvider"] == "aws" and values["autoDiscovery"]["clusterName"] == "ailab"
    provider = rec.of_type("pulumi:providers:kubernetes")[0].inputs
    assert provider["context"] == "eks-lab"


def test_k3s_target_takes_the_kubeconfig_the_k3s_role_fetched(monkeypatch: pytest.MonkeyPatch) -> None:
    files = {
        "inventories/lab.example/hosts.yml": "all: {}",
        ".lab/k3s/kubeconfig.yaml": "apiVersion: v1\nkind: Config\n",
    }
    cfg = weeks.stack_config(8) | {"ailab:cluster": {"target": "k3s"}}
    rec = run_program("week08", cfg, fake_probe(files, binaries=()), monkeypatch)
    provider = rec.of_type("pulumi:providers:kubernetes")[0]
    assert provider.name == "k3s" and "kind: Config" in str(provider.inputs["kubeconfig"])
    assert not rec.of_type("command:local:Command")  # no kind cluster


def test_kind_target_creates_the_cluster_nvkind_style(programs_by_week) -> None:
    commands = {r.name: r.inputs for r in programs_by_week[1].of_type("command:local:Command")}
    assert "kind create cluster --name ailab --config -" in commands["kind-cluster"]["create"]
    assert "/var/run/nvidia-container-devices/all" in commands["kind-cluster"]["stdin"]
    assert "nvidia-ctk runtime configure --runtime=containerd --set-as-default" in commands["kind-gpu-nodes"]["create"]


def test_releases_wait_for_the_secrets_and_configmaps_they_read(monkeypatch: pytest.MonkeyPatch) -> None:
    """kube-prometheus-stack needs grafana-admin and thanos-objstore; the GPU Operator its two ConfigMaps."""
    from ailab.platform import stack

    seen: dict[str, list[str]] = {}
    real = stack.LabComponent._release

    def spy(self, r, secrets, opts):
        seen[r.key] = [d._name for d in opts.depends_on or []]
        return real(self, r, secrets, opts)

    monkeypatch.setattr(stack.LabComponent, "_release", spy)
    run_program("week08", weeks.stack_config(8), fake_probe(GPU_READY_HOST), monkeypatch)
    assert {"monitoring-monitoring/grafana-admin", "monitoring-monitoring/thanos-objstore"} <= set(
        seen["kube-prometheus-stack"]
    )
    assert {"gpu-gpu-operator/ailab-device-plugin-config", "gpu-gpu-operator/ailab-mig-parted-config"} <= set(
        seen["gpu-operator"]
    )
    assert seen["thanos"] == ["kube-prometheus-stack"]  # releases of one component run in order
