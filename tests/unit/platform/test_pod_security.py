"""The stacks' pod security baseline over every rendered manifest of all 13 weeks (ailab/platform/podsecurity.py).

Every Pod template (Deployment, StatefulSet, DaemonSet, ReplicaSet, Job, CronJob, Pod) must meet the Pod
Security Standards' restricted profile as Kubernetes documents it, plus the lab's rules (UID >= 10000, read-only
root filesystem, liveness and readiness probes on long-running containers, no service-account token unless the
pod calls the API, secrets as files), except what podsecurity.HOST_ACCESS allows a named system pod, with its
reason; namespaces enforce the matching level. A failure names the week, the object, the container and the rule.

What Helm charts template is not rendered here (no `helm` binary offline): their values are checked instead.
"""

from __future__ import annotations

import copy
from typing import Any

import pytest
from pulumi_harness import manifests

from ailab.platform import podsecurity as ps
from ailab.platform import securitydoc
from workloads.operator.reconcile import desired_deployment

# What the security review found without a context, probes or token settings: each must be walked and pass.
REVIEWED = {
    ("Deployment", "ailab-exporter"),
    ("Deployment", "prometheus-global"),
    ("Deployment", "jaeger"),
    ("Deployment", "modeldeployment-operator"),
    ("Job", "gpu-smoke-test"),
    ("DaemonSet", "log-collector"),
    ("DaemonSet", "dcgm-exporter"),
    ("StatefulSet", "redis"),
    ("Deployment", "triton-stable"),
}


def week_violations(week: int, docs: list[dict[str, Any]]) -> list[str]:
    """Every broken rule of one week's manifests, as 'week NN: <Kind> <ns>/<name> container <c>: <rule>: ...'."""
    levels = ps.enforced_levels(docs)
    return [f"week {week:02d}: {v}" for m in docs for v in ps.check_pod(m, levels)]


def pods(docs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [m for m in docs if ps.pod_spec(m) is not None]


@pytest.mark.parametrize("week", range(1, 14))
def test_every_pod_of_the_week_meets_the_baseline(week: int, plans_by_week) -> None:
    docs = manifests(plans_by_week[week][1])
    assert pods(docs), f"week {week:02d} renders no pod template"
    assert week_violations(week, docs) == []


def test_the_walk_covers_every_reviewed_workload(plans_by_week) -> None:
    walked = {(m["kind"], m["metadata"]["name"]) for _, plans in plans_by_week.values() for m in pods(manifests(plans))}
    assert walked >= REVIEWED, REVIEWED - walked


def test_pod_spec_finds_every_template_kind() -> None:
    pod = {"containers": [{"name": "c"}]}
    template = {"template": {"spec": pod}}
    for kind in ("Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "Job"):
        assert ps.pod_spec({"kind": kind, "spec": template}) is pod
    assert ps.pod_spec({"kind": "CronJob", "spec": {"jobTemplate": {"spec": template}}}) is pod
    assert ps.pod_spec({"kind": "Pod", "spec": pod}) is pod
    assert ps.pod_spec({"kind": "Service", "spec": {}}) is None


# --- a deliberately non-compliant object is caught, with the week, object, container and rule --------------


def _exporter(plans_by_week) -> dict[str, Any]:
    docs = manifests(plans_by_week[1][1])
    return copy.deepcopy(next(m for m in docs if m["metadata"]["name"] == "ailab-exporter" and m["kind"] != "Service"))


def test_a_non_compliant_deployment_is_caught_naming_week_object_container_and_rule(plans_by_week) -> None:
    docs = manifests(plans_by_week[5][1])
    bad = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "sloppy", "namespace": "ailab"},
        "spec": {
            "selector": {"matchLabels": {"app": "sloppy"}},
            "template": {
                "metadata": {"labels": {"app": "sloppy"}},
                "spec": {
                    "hostNetwork": True,
                    "containers": [
                        {
                            "name": "app",
                            "image": "example/app:1.0",
                            "securityContext": {"privileged": True, "runAsUser": 0},
                            "env": [
                                {"name": "DB_PASSWORD", "valueFrom": {"secretKeyRef": {"name": "db", "key": "pw"}}}
                            ],
                        }
                    ],
                    "volumes": [{"name": "host", "hostPath": {"path": "/"}}],
                },
            },
        },
    }
    found = week_violations(5, [*docs, bad])
    assert found, "the non-compliant Deployment was not caught"
    assert all(f.startswith("week 05: Deployment ailab/sloppy") for f in found), found
    expected = [
        "week 05: Deployment ailab/sloppy: host-namespaces: spec.hostNetwork is true",
        "week 05: Deployment ailab/sloppy: hostPath-volumes: volume host is hostPath /",
        "week 05: Deployment ailab/sloppy container app: privileged: securityContext.privileged is true",
        "week 05: Deployment ailab/sloppy container app: runAsNonRoot: must be true (container or pod), is None",
        "week 05: Deployment ailab/sloppy container app: runAsUser: securityContext.runAsUser is 0",
        "week 05: Deployment ailab/sloppy container app: allowPrivilegeEscalation: must be false, is None",
        "week 05: Deployment ailab/sloppy container app: seccompProfile: must be RuntimeDefault or Localhost "
        "(container or pod), is None",
        "week 05: Deployment ailab/sloppy container app: capabilities-restricted: must drop ALL, drops None",
        "week 05: Deployment ailab/sloppy container app: readOnlyRootFilesystem: must be true, is None",
        "week 05: Deployment ailab/sloppy container app: probes: a long-running container needs a livenessProbe",
        "week 05: Deployment ailab/sloppy container app: secrets-as-files: env DB_PASSWORD comes from a Secret; "
        "mount it as a file",
        "week 05: Deployment ailab/sloppy: serviceAccountToken: automountServiceAccountToken must be false "
        "(not an API caller), is None",
    ]
    missing = [e for e in expected if e not in found]
    assert missing == [], found


def _container(m: dict[str, Any]) -> dict[str, Any]:
    return m["spec"]["template"]["spec"]["containers"][0]


def _pod(m: dict[str, Any]) -> dict[str, Any]:
    return m["spec"]["template"]["spec"]


MUTATIONS = {
    "hostProcess": lambda m: _pod(m)["securityContext"].update(windowsOptions={"hostProcess": True}),
    "host-namespaces": lambda m: _pod(m).update(hostPID=True),
    "privileged": lambda m: _container(m)["securityContext"].update(privileged=True),
    "capabilities-baseline": lambda m: _container(m)["securityContext"]["capabilities"].update(add=["SYS_ADMIN"]),
    "hostPath-volumes": lambda m: _pod(m)["volumes"].append({"name": "h", "hostPath": {"path": "/etc"}}),
    "host-ports": lambda m: _container(m)["ports"][0].update(hostPort=9108),
    "appArmor": lambda m: _container(m)["securityContext"].update(appArmorProfile={"type": "Unconfined"}),
    "seLinux": lambda m: _pod(m)["securityContext"].update(seLinuxOptions={"type": "spc_t"}),
    "procMount": lambda m: _container(m)["securityContext"].update(procMount="Unmasked"),
    "seccomp-baseline": lambda m: _container(m)["securityContext"].update(seccompProfile={"type": "Unconfined"}),
    "sysctls": lambda m: _pod(m)["securityContext"].update(sysctls=[{"name": "kernel.msgmax", "value": "1"}]),
    "volume-types": lambda m: _pod(m)["volumes"].append({"name": "n", "nfs": {"server": "s", "path": "/"}}),
    "allowPrivilegeEscalation": lambda m: _container(m)["securityContext"].update(allowPrivilegeEscalation=True),
    "runAsNonRoot": lambda m: _container(m)["securityContext"].update(runAsNonRoot=False),
    "runAsUser": lambda m: _pod(m)["securityContext"].update(runAsUser=0),
    "seccompProfile": lambda m: (
        _container(m)["securityContext"].pop("seccompProfile"),
        _pod(m)["securityContext"].pop("seccompProfile"),
    ),
    "capabilities-restricted": lambda m: _container(m)["securityContext"]["capabilities"].update(add=["CHOWN"]),
    "high-uid": lambda m: _container(m)["securityContext"].update(runAsUser=1000),
    "non-root-group": lambda m: _pod(m)["securityContext"].update(fsGroup=0),
    "readOnlyRootFilesystem": lambda m: _container(m)["securityContext"].update(readOnlyRootFilesystem=False),
    "probes": lambda m: _container(m).pop("readinessProbe"),
    "probe-port": lambda m: _container(m)["livenessProbe"]["httpGet"].update(port="web"),
    "serviceAccountToken": lambda m: _pod(m).pop("automountServiceAccountToken"),
    "api-validation": lambda m: _container(m)["securityContext"].update(privileged=True),
    "secrets-as-files": lambda m: _container(m).update(envFrom=[{"secretRef": {"name": "grafana-admin"}}]),
}


def test_every_rule_has_a_mutation() -> None:
    assert set(MUTATIONS) == set(ps.RULES) - {"namespace-level"}


@pytest.mark.parametrize("rule", sorted(MUTATIONS))
def test_each_rule_catches_its_violation(rule: str, plans_by_week) -> None:
    m = _exporter(plans_by_week)
    assert ps.check_pod(m) == []  # compliant as rendered
    MUTATIONS[rule](m)
    found = {v.rule for v in ps.check_pod(m)}
    assert rule in found, found


def test_a_pod_in_a_namespace_below_its_level_is_caught(plans_by_week) -> None:
    m = _exporter(plans_by_week)
    v = ps.check_pod(m, {"monitoring": "privileged"})  # a workload must not sit in a privileged namespace
    assert [str(x) for x in v] == [
        "Deployment monitoring/ailab-exporter: namespace-level: namespace enforces privileged, not restricted"
    ]
    v = ps.check_pod(m, {})
    assert [x.rule for x in v] == ["namespace-level"]


def test_an_exception_holds_only_in_its_own_namespace(plans_by_week) -> None:
    docs = manifests(plans_by_week[7][1])
    dcgm = copy.deepcopy(next(m for m in docs if m["kind"] == "DaemonSet" and m["metadata"]["name"] == "dcgm-exporter"))
    assert ps.check_pod(dcgm) == []  # root + SYS_ADMIN + hostPath: allowed by HOST_ACCESS, with its reason
    dcgm["metadata"]["namespace"] = "ailab"
    rules = {v.rule for v in ps.check_pod(dcgm)}
    assert {"capabilities-baseline", "hostPath-volumes", "runAsNonRoot", "high-uid"} <= rules
    # and an exception covers only the rules it lists: the DCGM exporter may not run privileged
    dcgm["metadata"]["namespace"] = ps.SYSTEM_NS
    _container(dcgm)["securityContext"]["privileged"] = True
    assert [v.rule for v in ps.check_pod(dcgm)] == ["privileged"]


# --- namespaces, the exception table, tokens, secrets --------------------------------------------------------


def test_namespaces_enforce_the_level_their_pods_need(plans_by_week) -> None:
    for week, (_, plans) in plans_by_week.items():
        docs = manifests(plans)
        for ns in (m for m in docs if m["kind"] == "Namespace"):
            name, labels = ns["metadata"]["name"], ns["metadata"]["labels"]
            level = ps.namespace_level(name)
            where = f"week {week:02d}: Namespace {name}"
            for mode in ("enforce", "warn", "audit"):
                assert labels[f"pod-security.kubernetes.io/{mode}"] == level, where
                assert labels[f"pod-security.kubernetes.io/{mode}-version"] == ps.PSS_VERSION, where
            reason = (ns["metadata"].get("annotations") or {}).get("ailab.dev/pod-security-reason")
            assert (reason is not None) == (level != "restricted"), where
        assert "kube-system" not in {m["metadata"]["name"] for m in docs if m["kind"] == "Namespace"}
        assert not [m for m in pods(docs) if m["metadata"].get("namespace") == "kube-system"], week


def test_only_the_system_namespaces_are_not_restricted(plans_by_week) -> None:
    names = {m["metadata"]["name"] for _, plans in plans_by_week.values() for m in manifests(plans)
             if m["kind"] == "Namespace"}  # fmt: skip
    loose = {n for n in names if ps.namespace_level(n) != "restricted"}
    assert loose == {"nvidia", "gpu-operator", "istio-system", ps.SYSTEM_NS}
    assert {"ailab", "monitoring", "observability"} <= names - loose


def test_every_exception_has_a_reason_and_exists(plans_by_week) -> None:
    rendered = {(m["metadata"]["name"], m["metadata"]["namespace"])
                for _, plans in plans_by_week.values() for m in pods(manifests(plans))}  # fmt: skip
    releases = {r.key for _, plans in plans_by_week.values() for p in plans for r in p.releases}
    for h in ps.HOST_ACCESS.values():
        assert len(h.reason) > 40, h.name
        if h.source == "rendered":
            assert (h.name, h.namespace) in rendered, f"HOST_ACCESS {h.name}: no such rendered pod"
        else:
            assert h.source.removeprefix("helm:") in releases, f"HOST_ACCESS {h.name}: no release {h.source}"
    # the exceptions are exactly the system pods the baseline names, plus the Istio CNI agent
    assert set(ps.HOST_ACCESS) == {
        "nvidia-device-plugin",
        "nvidia-device-plugin-mps-control-daemon",
        "gpu-operator",
        "dcgm-exporter",
        "node-exporter",
        "log-collector",
        "istio-cni-node",
    }


def test_an_unknown_rule_in_the_exception_table_is_refused() -> None:
    with pytest.raises(ValueError, match="HOST_ACCESS x: unknown rule"):
        ps._host("x", "ns", "rendered", {"no-such-rule"}, "why")


def test_only_api_callers_keep_their_token(plans_by_week) -> None:
    tokens = {}
    for _, (_, plans) in plans_by_week.items():
        for m in pods(manifests(plans)):
            tokens[m["metadata"]["name"]] = ps.pod_spec(m).get("automountServiceAccountToken")
    assert {n for n, t in tokens.items() if t is not False} == set(ps.API_CALLERS)
    assert all(len(why) > 20 for why in ps.API_CALLERS.values())


def test_helm_values_keep_chart_pods_in_the_baseline(plans_by_week) -> None:
    """Chart pods are not rendered here: the values that place and harden them are checked instead."""
    for week, (s, plans) in plans_by_week.items():
        releases = {r.key: r.values for p in plans for r in p.releases}
        node_exporter = releases["kube-prometheus-stack"]["prometheus-node-exporter"]
        assert node_exporter["namespaceOverride"] == ps.HOST_ACCESS["node-exporter"].namespace, week
        if s.mesh.enabled:  # sidecar injection without istio-init (NET_ADMIN) needs the CNI agent
            assert "istio-cni" in releases and releases["istiod"]["pilot"]["cni"]["enabled"] is True, week
        if "istio-ingress" in releases:
            gateway_pod = releases["istio-ingress"]["securityContext"]
            assert gateway_pod["seccompProfile"] == {"type": "RuntimeDefault"}, week
            assert {x["name"] for x in gateway_pod["sysctls"]} <= ps.SAFE_SYSCTLS, week
        if "prometheus-adapter" in releases:
            assert releases["prometheus-adapter"]["securityContext"] == ps.container_context(ps.LAB_UID), week
        if "opentelemetry-collector" in releases:
            otel = releases["opentelemetry-collector"]
            assert otel["securityContext"] == ps.container_context(ps.LAB_UID), week
            assert otel["podSecurityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}, week


def test_a_namespace_only_a_chart_uses_is_created_and_labelled(plans_by_week) -> None:
    """node-exporter's namespace comes from a chart value, not from a manifest: the plan still creates it."""
    for _, (_, plans) in plans_by_week.items():
        names = {m["metadata"]["name"] for m in manifests(plans) if m["kind"] == "Namespace"}
        assert ps.SYSTEM_NS in names


def test_deployments_the_operator_creates_meet_the_baseline() -> None:
    """The operator creates Triton Deployments at run time in the restricted lab namespace: same rules."""
    dep = desired_deployment("bert", "ailab", {"model": "bert_onnx"}, "localhost/ailab-triton-models:0.1.0")
    assert [str(v) for v in ps.check_pod(dep, {"ailab": "restricted"})] == []


def test_docs_security_tables_match_the_rendered_stacks() -> None:
    """docs/security.md carries the tables `python -m ailab.platform.securitydoc --write-doc` writes."""
    doc = securitydoc.DOC.read_text()
    assert doc.split(securitydoc.BEGIN, 1)[1].split(securitydoc.END, 1)[0].strip() == securitydoc.tables()
