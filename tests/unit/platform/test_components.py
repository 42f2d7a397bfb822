"""Each component's resources under Pulumi mocks, checked on the inputs the engine would receive.

Mocked: the Pulumi engine and Kubernetes API. Helm releases render nothing under mocks: their chart, version
and values are what is asserted.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from pulumi_harness import GPU_READY_HOST, MOCK_PASSWORD, SECRET_SIG, fake_probe, run_program

from ailab.contract.paths import REPO_ROOT
from ailab.platform import monitoring, weeks
from ailab.platform.model import PlanInputs
from ailab.platform.versions import CHARTS, IMAGES
from workloads.images.catalog import TAG, ref
from workloads.serving.repository import week_models

REL = "kubernetes:helm.sh/v3:Release"
DEPLOY = "kubernetes:apps/v1:Deployment"


def container(dep: dict, name: str) -> dict:
    return next(c for c in dep["spec"]["template"]["spec"]["containers"] if c["name"] == name)


# --- GPU ---------------------------------------------------------------------------------------------------


def test_device_plugin_mps_config_and_per_node_config(programs_by_week) -> None:
    rel = programs_by_week[7].release("nvidia-device-plugin")
    assert rel["version"] == CHARTS["nvidia-device-plugin"].version
    files = {k: yaml.safe_load(v) for k, v in rel["values"]["config"]["map"].items()}
    assert files["default"]["sharing"]["mps"]["resources"] == [{"name": "nvidia.com/gpu", "replicas": 4}]
    assert files["default"]["flags"]["migStrategy"] == "none"
    assert files["mig-single"]["flags"]["migStrategy"] == "single" and "sharing" not in files["mig-single"]
    assert rel["values"]["config"]["default"] == "default"
    assert rel["values"]["gfd"]["enabled"] is True and rel["values"]["nfd"]["enabled"] is True


def test_time_slicing_flags(programs_by_week) -> None:
    cfg = yaml.safe_load(programs_by_week[6].release("nvidia-device-plugin")["values"]["config"]["map"]["default"])
    ts = cfg["sharing"]["timeSlicing"]
    assert ts == {
        "renameByDefault": True,
        "failRequestsGreaterThanOne": True,
        "resources": [{"name": "nvidia.com/gpu", "replicas": 4}],
    }


def test_renamed_time_slicing_pods_ask_for_the_shared_resource(programs_by_week) -> None:
    """Week 6 renames time-sliced GPUs (nvidia.com/gpu.shared): a pod asking for nvidia.com/gpu would stay Pending."""
    res = programs_by_week[6].one(DEPLOY, "triton-stable")["spec"]["template"]["spec"]["containers"]
    tri = next(c for c in res if c["name"] == "tritonserver")["resources"]
    assert tri["requests"]["nvidia.com/gpu.shared"] == tri["limits"]["nvidia.com/gpu.shared"] == "1"
    assert "nvidia.com/gpu" not in tri["requests"]
    smoke = programs_by_week[6].one("kubernetes:batch/v1:Job", "gpu-smoke-test")["spec"]["template"]["spec"]
    assert "nvidia.com/gpu.shared" in smoke["containers"][0]["resources"]["limits"]
    week5 = programs_by_week[5].one(DEPLOY, "triton-stable")["spec"]["template"]["spec"]["containers"]
    assert "nvidia.com/gpu" in next(c for c in week5 if c["name"] == "tritonserver")["resources"]["limits"]


def test_per_node_config_labels_the_nodes(monkeypatch: pytest.MonkeyPatch) -> None:
    # which nodes: a site override in the stack file, merged over the week's facts
    cfg = weeks.stack_config(7) | {"ailab:gpu": {"nodeConfigs": {"mig-single": {"nodes": ["ailab-worker2"]}}}}
    rec = run_program("week07", cfg, fake_probe(GPU_READY_HOST), monkeypatch)
    patch = rec.of_type("kubernetes:core/v1:NodePatch")[0].inputs
    assert patch["metadata"] == {"name": "ailab-worker2", "labels": {"nvidia.com/device-plugin.config": "mig-single"}}


def test_gpu_operator_with_mig_layouts(programs_by_week, monkeypatch: pytest.MonkeyPatch) -> None:
    values = programs_by_week[8].release("gpu-operator")["values"]
    assert values["driver"]["enabled"] is False and values["toolkit"]["enabled"] is False  # kind: host provides
    assert values["cdi"]["enabled"] is True and values["mig"]["strategy"] == "mixed"
    assert values["devicePlugin"]["config"] == {"name": "ailab-device-plugin-config", "default": "default"}
    assert values["migManager"]["config"]["name"] == "ailab-mig-parted-config"
    parted = yaml.safe_load(
        programs_by_week[8].one("kubernetes:core/v1:ConfigMap", "ailab-mig-parted-config")["data"]["config.yaml"]
    )
    assert parted["mig-configs"]["h100-mixed"] == [
        {"devices": "all", "mig-enabled": True, "mig-devices": {"3g.40gb": 1, "2g.20gb": 1, "1g.10gb": 2}}
    ]
    cfg = weeks.stack_config(8) | {"ailab:gpu": {"mig": {"nodes": {"gpu-node-1": "h100-all-1g"}}}}
    rec = run_program("week08", cfg, fake_probe(GPU_READY_HOST), monkeypatch)
    labels = [r.inputs["metadata"]["labels"] for r in rec.of_type("kubernetes:core/v1:NodePatch")]
    assert labels == [{"nvidia.com/mig.config": "h100-all-1g"}]


def test_smoke_pod_requests_one_gpu_and_tolerates_gpu_taints(programs_by_week) -> None:
    job = programs_by_week[1].one("kubernetes:batch/v1:Job", "gpu-smoke-test")
    pod = job["spec"]["template"]["spec"]
    res = pod["containers"][0]["resources"]
    assert res["requests"]["nvidia.com/gpu"] == res["limits"]["nvidia.com/gpu"] == "1"
    assert {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"} in pod["tolerations"]
    assert pod["containers"][0]["command"] == ["nvidia-smi", "-L"]


# --- Serving ------------------------------------------------------------------------------------------------


def test_triton_explicit_model_control_loads_the_weeks_models(programs_by_week) -> None:
    dep = programs_by_week[4].one(DEPLOY, "triton-stable")
    c = container(dep, "tritonserver")
    assert c["image"] == IMAGES["tritonserver"]
    assert "--model-control-mode=explicit" in c["args"]
    assert [a.split("=", 1)[1] for a in c["args"] if a.startswith("--load-model=")] == [m.name for m in week_models(4)]
    init = dep["spec"]["template"]["spec"]["initContainers"][0]
    assert init["image"] == ref("triton-models") and init["image"].endswith(f":{TAG}")
    assert {"name": "WEEK", "value": "04"} in init["env"]  # copy-repository.sh picks /models/week04
    startup = c["startupProbe"]
    assert startup["periodSeconds"] * startup["failureThreshold"] >= 600  # slow model loads
    assert c["readinessProbe"]["httpGet"]["path"] == "/v2/health/ready"


def test_triton_service_pdb_priority(programs_by_week) -> None:
    rec = programs_by_week[1]
    ports = {p["name"]: p["port"] for p in rec.one("kubernetes:core/v1:Service", "triton")["spec"]["ports"]}
    assert sorted(ports.values()) == [8000, 8001, 8002] and "metrics" in ports
    assert rec.one("kubernetes:policy/v1:PodDisruptionBudget", "triton")["spec"]["maxUnavailable"] == 1
    pc = rec.one("kubernetes:scheduling.k8s.io/v1:PriorityClass", "ailab-inference")
    assert container(rec.one(DEPLOY, "triton-stable"), "tritonserver") and pc["value"] == 100000


def test_hpa_on_cpu_and_queue_time_through_prometheus_adapter(programs_by_week) -> None:
    rec = programs_by_week[3]
    hpa = rec.one("kubernetes:autoscaling/v2:HorizontalPodAutoscaler", "triton")["spec"]
    types = {m["type"]: m for m in hpa["metrics"]}
    assert types["Resource"]["resource"]["target"]["averageUtilization"] == 70
    assert types["Pods"]["pods"]["metric"]["name"] == "triton_queue_time_us_per_request"
    assert types["Pods"]["pods"]["target"]["averageValue"] == "5000"
    rules = rec.release("prometheus-adapter")["values"]["rules"]["custom"]
    assert rules[0]["name"]["as"] == "triton_queue_time_us_per_request"


def test_keda_scaled_object_with_prometheus_trigger(programs_by_week) -> None:
    rec = programs_by_week[9]
    so = rec.one("kubernetes:keda.sh/v1alpha1:ScaledObject", "triton")["spec"]
    assert so["scaleTargetRef"]["name"] == "triton-stable"
    assert so["triggers"][0]["type"] == "prometheus" and so["triggers"][0]["metadata"]["threshold"] == "50"
    assert rec.release("keda")["version"] == CHARTS["keda"].version


# --- Monitoring ---------------------------------------------------------------------------------------------


def test_kube_prometheus_stack_selects_every_monitor_and_rule(programs_by_week) -> None:
    values = programs_by_week[1].release("kube-prometheus-stack")["values"]
    spec = values["prometheus"]["prometheusSpec"]
    assert spec["serviceMonitorSelectorNilUsesHelmValues"] is False
    assert spec["ruleSelectorNilUsesHelmValues"] is False
    assert values["grafana"]["sidecar"]["dashboards"]["label"] == "grafana_dashboard"


def test_dcgm_exporter_and_service_monitors(programs_by_week) -> None:
    rec = programs_by_week[7]
    ds = rec.one("kubernetes:apps/v1:DaemonSet", "dcgm-exporter")
    assert container(ds, "dcgm-exporter")["ports"] == [{"name": "metrics", "containerPort": 9400}]
    monitors = {r.inputs["metadata"]["name"] for r in rec.of_type("kubernetes:monitoring.coreos.com/v1:ServiceMonitor")}
    assert monitors == {"triton", "dcgm-exporter", "ailab-exporter"}


def test_dashboards_and_rules_are_read_from_the_repository(programs_by_week) -> None:
    rec = programs_by_week[2]
    dashboards = sorted((REPO_ROOT / "dashboards" / "grafana").glob("*.json"))
    cms = [
        r.inputs
        for r in rec.of_type("kubernetes:core/v1:ConfigMap")
        if r.inputs["metadata"]["name"].startswith("dashboard-")
    ]
    assert len(cms) == len(dashboards)
    for cm in cms:
        ((fname, text),) = cm["data"].items()
        assert json.loads(text) == json.loads((REPO_ROOT / "dashboards" / "grafana" / fname).read_text())
        assert cm["metadata"]["labels"]["grafana_dashboard"] == "1"
    rule_files = sorted((REPO_ROOT / "dashboards" / "prometheus" / "rules").glob("*.y*ml"))
    rules = rec.of_type("kubernetes:monitoring.coreos.com/v1:PrometheusRule")
    assert len(rules) == len(rule_files)


def test_no_dashboard_files_means_no_configmaps_and_bad_rule_files_are_refused(tmp_path: Path, plans_by_week) -> None:
    s, _ = plans_by_week[2]
    assert monitoring.dashboard_configmaps(tmp_path) == [] and monitoring.prometheus_rules(tmp_path) == []
    (tmp_path / "prometheus" / "rules").mkdir(parents=True)
    (tmp_path / "prometheus" / "rules" / "x.yaml").write_text("rules: []\n")
    with pytest.raises(ValueError, match="top-level `groups:`"):
        monitoring.plan(s, PlanInputs("ailab", tmp_path))


def test_thanos_and_federation(programs_by_week) -> None:
    rec = programs_by_week[8]
    spec = rec.release("kube-prometheus-stack")["values"]["prometheus"]["prometheusSpec"]
    assert spec["thanos"]["objectStorageConfig"]["existingSecret"]["name"] == "thanos-objstore"
    thanos = rec.release("thanos")["values"]
    assert thanos["query"]["enabled"] and thanos["storegateway"]["enabled"]
    assert thanos["minio"]["auth"]["rootPassword"] == MOCK_PASSWORD  # generated, never in the stack file
    objstore = yaml.safe_load(rec.one("kubernetes:core/v1:Secret", "thanos-objstore")["stringData"]["objstore.yml"])
    assert objstore["config"]["secret_key"] == MOCK_PASSWORD
    fed = yaml.safe_load(rec.one("kubernetes:core/v1:ConfigMap", "prometheus-global")["data"]["prometheus.yml"])
    assert fed["scrape_configs"][0]["metrics_path"] == "/federate"


# --- Cache, mesh, delivery, objects, security, tracing ------------------------------------------------------


def test_redis_statefulset_with_pvc_and_generated_password(programs_by_week) -> None:
    rec = programs_by_week[3]
    sts = rec.one("kubernetes:apps/v1:StatefulSet", "redis")["spec"]
    assert sts["volumeClaimTemplates"][0]["spec"]["resources"]["requests"]["storage"] == "1Gi"
    redis = container({"spec": sts}, "redis")
    assert "env" not in redis  # the password is a file of the mounted Secret, never an environment variable
    mounts = {m["name"]: m for m in redis["volumeMounts"]}
    volumes = {v["name"]: v for v in sts["template"]["spec"]["volumes"]}
    assert volumes["auth"]["secret"]["secretName"] == "redis" and mounts["auth"]["readOnly"] is True
    assert volumes["config"]["configMap"]["name"] == "redis"
    conf = rec.one("kubernetes:core/v1:ConfigMap", "redis")["data"]["redis.conf"]
    assert f"include {mounts['auth']['mountPath']}/auth.conf" in conf  # the server reads requirepass from the file
    assert redis["command"] == ["redis-server", f"{mounts['config']['mountPath']}/redis.conf"]
    secret = rec.one("kubernetes:core/v1:Secret", "redis")["stringData"]
    assert secret["password"] == MOCK_PASSWORD and secret["auth.conf"] == f"requirepass {MOCK_PASSWORD}\n"
    assert f"cat {mounts['auth']['mountPath']}/password" in redis["readinessProbe"]["exec"]["command"][-1]
    raw = next(r.raw for r in rec.of_type("kubernetes:core/v1:Secret") if r.name.endswith("/redis"))
    assert SECRET_SIG in raw["stringData"]  # kept secret in the Pulumi state
    # registration order follows the event loop's scheduling, not the program's order
    assert sorted(r.name for r in rec.of_type("random:index/randomPassword:RandomPassword")) == [
        "grafana-admin-password",
        "redis-password",
    ]


@pytest.mark.parametrize(("week", "weights"), [(4, [90, 10]), (6, [70, 30]), (9, [50, 50])])
def test_virtual_service_weights(week: int, weights: list[int], programs_by_week) -> None:
    vs = programs_by_week[week].one("kubernetes:networking.istio.io/v1:VirtualService", "triton")["spec"]
    assert [(r["destination"]["subset"], r["weight"]) for r in vs["http"][0]["route"]] == list(
        zip(["stable", "canary"], weights, strict=True)
    )


def test_mirroring_circuit_breaking_rate_limit(programs_by_week) -> None:
    rec = programs_by_week[7]
    http = rec.one("kubernetes:networking.istio.io/v1:VirtualService", "triton")["spec"]["http"][0]
    assert http["mirror"]["subset"] == "canary" and http["mirrorPercentage"] == {"value": 100}
    tp = rec.one("kubernetes:networking.istio.io/v1:DestinationRule", "triton")["spec"]["trafficPolicy"]
    assert tp["connectionPool"]["http"]["http1MaxPendingRequests"] == 32
    assert tp["outlierDetection"]["consecutive5xxErrors"] == 3
    ef = rec.one("kubernetes:networking.istio.io/v1alpha3:EnvoyFilter", "triton-local-ratelimit")["spec"]
    bucket = ef["configPatches"][0]["patch"]["value"]["typed_config"]["value"]["token_bucket"]
    assert bucket == {"max_tokens": 100, "tokens_per_fill": 50, "fill_interval": "1s"}
    charts = [rec.release(k)["chart"] for k in ("istio-base", "istio-cni", "istiod", "istio-ingress")]
    assert charts == ["base", "cni", "istiod", "gateway"]
    assert rec.release("istiod")["values"]["pilot"]["cni"]["enabled"] is True  # no NET_ADMIN istio-init container


def test_argocd_application_syncs_the_rendered_week(programs_by_week) -> None:
    app = programs_by_week[4].one("kubernetes:argoproj.io/v1alpha1:Application", "ailab-week04")["spec"]
    assert app["source"]["path"] == "deploy/week04" and app["destination"]["namespace"] == "ailab"


def test_operator_crd_controller_and_log_collector(programs_by_week) -> None:
    rec = programs_by_week[13]
    crd = rec.one("kubernetes:apiextensions.k8s.io/v1:CustomResourceDefinition", "modeldeployments.lab.ailab.dev")
    assert crd["spec"]["names"]["kind"] == "ModelDeployment"
    ctl = container(rec.one(DEPLOY, "modeldeployment-operator"), "controller")
    assert "workloads.operator.controller" in ctl["command"]
    assert rec.one("kubernetes:lab.ailab.dev/v1alpha1:ModelDeployment", "mlp-demo")["spec"]["model"] == "mlp"
    assert rec.one("kubernetes:apps/v1:DaemonSet", "log-collector")


def test_security_tls_jwt_network_policies(programs_by_week) -> None:
    rec = programs_by_week[11]
    assert rec.release("cert-manager")["values"]["crds"]["enabled"] is True
    cert = rec.one("kubernetes:cert-manager.io/v1:Certificate", "ailab-gateway-tls")["spec"]
    gw = rec.one("kubernetes:networking.istio.io/v1:Gateway", "ailab-gateway")["spec"]
    assert any(s.get("tls", {}).get("credentialName") == cert["secretName"] for s in gw["servers"])
    ra = rec.one("kubernetes:security.istio.io/v1:RequestAuthentication", "triton")["spec"]
    ap = rec.one("kubernetes:security.istio.io/v1:AuthorizationPolicy", "triton")["spec"]
    assert ap["rules"][0]["from"][0]["source"]["requestPrincipals"] == [f"{ra['jwtRules'][0]['issuer']}/*"]
    names = {r.inputs["metadata"]["name"] for r in rec.of_type("kubernetes:networking.k8s.io/v1:NetworkPolicy")}
    assert "default-deny-ingress" in names


def test_tracing_collector_jaeger_and_triton_traces(programs_by_week) -> None:
    rec = programs_by_week[11]
    config = rec.release("opentelemetry-collector")["values"]["config"]
    assert config["exporters"]["otlp/jaeger"]["endpoint"].startswith("jaeger.observability.svc")
    assert rec.one(DEPLOY, "jaeger")
    args = container(rec.one(DEPLOY, "triton-stable"), "tritonserver")["args"]
    assert "--trace-config=mode=opentelemetry" in args and "--trace-config=rate=10" in args


def test_k3s_kubelet_topology_args_are_exported(plans_by_week) -> None:
    _, plans = plans_by_week[8]
    args = next(p for p in plans if p.name == "objects").outputs["k3sKubeletArgs"]
    assert args == [
        "topology-manager-policy=single-numa-node",
        "cpu-manager-policy=static",
        "topology-manager-scope=pod",
        "reserved-cpus=0-1",
    ]
