"""The session's apply / patch / remove / wait / cleanup flow against a fake API server.

The Kubernetes API server is the only thing faked (none can run in this workplace): `FakeApi`
(cluster_fakeapi.py) keeps objects, answers as the API server does for these calls, can be told to fail a call,
and records every call, so the tests check what the session did, in what order, including the cleanup after a
failed run.
"""

from __future__ import annotations

from typing import Any

import pytest
from cluster_fakeapi import FakeApi, merge

from workloads.cluster.session import ClusterSession, managed, merge_diff

VS = {
    "apiVersion": "networking.istio.io/v1",
    "kind": "VirtualService",
    "metadata": {"name": "triton", "namespace": "ailab"},
    "spec": {
        "hosts": ["*"],
        "http": [
            {
                "route": [
                    {"destination": {"host": "triton", "subset": "stable"}, "weight": 90},
                    {"destination": {"host": "triton", "subset": "canary"}, "weight": 10},
                ],
                "timeout": "30s",
            }
        ],
    },
}
DR = {
    "apiVersion": "networking.istio.io/v1",
    "kind": "DestinationRule",
    "metadata": {"name": "triton", "namespace": "ailab"},
    "spec": {"host": "triton"},
}
POD = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"}, "spec": {"containers": [{"name": "c"}]}}


def session(api: FakeApi, **kw: Any) -> ClusterSession:
    return ClusterSession(api, "d26.e1", log=lambda _: None, **kw)


def test_created_objects_are_labelled_and_removed_with_the_run_namespace() -> None:
    api = FakeApi([VS])
    s = session(api)
    assert s.namespace.startswith("ailab-x-d26-e1-")
    s.apply(POD)
    pod = api.get("v1", "Pod", "p", s.namespace)
    assert pod["metadata"]["labels"]["lab.ailab.dev/experiment"] == "d26.e1"
    assert s.close() == []
    assert api.get("v1", "Pod", "p", s.namespace) is None and api.get("v1", "Namespace", s.namespace) is None
    assert ("delete", f"Pod {s.namespace}/p") not in api.calls  # gone with the namespace, not deleted one by one


def test_changed_stack_objects_are_put_back_exactly() -> None:
    api = FakeApi([VS, DR])
    s = session(api)
    s.patch(
        "networking.istio.io/v1",
        "VirtualService",
        "triton",
        "ailab",
        {"spec": {"http": [{"route": [{"destination": {"host": "triton", "subset": "stable"}, "weight": 100}]}]}},
    )
    s.patch(
        "networking.istio.io/v1",
        "DestinationRule",
        "triton",
        "ailab",
        {"spec": {"trafficPolicy": {"loadBalancer": {"simple": "RANDOM"}}}},
    )
    s.patch(
        "networking.istio.io/v1",
        "DestinationRule",
        "triton",
        "ailab",
        {"spec": {"trafficPolicy": {"loadBalancer": {"simple": "LEAST_REQUEST"}}}},
    )
    assert s.close() == []
    assert api.get("networking.istio.io/v1", "VirtualService", "triton", "ailab")["spec"] == VS["spec"]
    assert api.get("networking.istio.io/v1", "DestinationRule", "triton", "ailab")["spec"] == DR["spec"]


def test_a_removed_object_is_recreated_and_a_missing_one_is_refused() -> None:
    api = FakeApi([DR])
    s = session(api)
    assert s.remove("networking.istio.io/v1", "DestinationRule", "triton", "ailab")
    assert api.get("networking.istio.io/v1", "DestinationRule", "triton", "ailab") is None
    with pytest.raises(LookupError, match="pulumi up"):
        s.patch("networking.istio.io/v1", "VirtualService", "triton", "ailab", {"spec": {}})
    assert s.close() == []
    assert api.get("networking.istio.io/v1", "DestinationRule", "triton", "ailab")["spec"] == DR["spec"]


def test_cleanup_runs_when_the_experiment_fails_and_names_what_it_could_not_undo() -> None:
    api = FakeApi([VS])
    s = session(api)
    boom = RuntimeError("load generator crashed")
    with pytest.raises(RuntimeError, match="crashed") as err, managed(s):
        s.apply(POD)
        s.patch("networking.istio.io/v1", "VirtualService", "triton", "ailab", {"spec": {"hosts": ["x"]}})
        raise boom
    assert api.get("v1", "Namespace", s.namespace) is None
    assert api.get("networking.istio.io/v1", "VirtualService", "triton", "ailab")["spec"] == VS["spec"]
    assert not getattr(err.value, "__notes__", None)  # everything undone: nothing to add

    api = FakeApi([VS])
    s = session(api)
    with pytest.raises(RuntimeError, match="crashed") as err, managed(s):
        s.patch("networking.istio.io/v1", "VirtualService", "triton", "ailab", {"spec": {"hosts": ["x"]}})
        api.fail = {"patch VirtualService ailab/triton": PermissionError("forbidden")}  # the restore will fail
        raise boom
    # the run's own error surfaces, with a note naming what could not be undone; the namespace is still deleted
    assert any(
        "VirtualService ailab/triton: restore failed (PermissionError: forbidden)" in n for n in err.value.__notes__
    )
    assert api.get("v1", "Namespace", s.namespace) is None


def test_a_leftover_after_a_good_run_is_an_error() -> None:
    s = session(FakeApi())
    s.api.fail = {f"delete Namespace {s.namespace}": TimeoutError("slow finalizer")}
    with (
        pytest.raises(RuntimeError, match=r"cleanup left behind: Namespace ailab-x-d26-e1-.*slow finalizer"),
        managed(s),
    ):
        s.apply(POD)


def test_a_given_namespace_is_used_and_kept() -> None:
    api = FakeApi()
    s = session(api, namespace="ailab")
    s.apply(POD)
    assert api.get("v1", "Pod", "p", "ailab") is not None
    s.close()
    assert ("delete", "Pod ailab/p") in api.calls


def test_wait_polls_until_true_and_times_out_naming_what() -> None:
    clock = iter(range(100))
    s = ClusterSession(FakeApi(), "d02.e1", log=lambda _: None, clock=lambda: next(clock), sleep=lambda _: None)
    seen = iter([None, None, {"ok": 1}])
    assert s.wait("pod ready", lambda: next(seen), timeout_s=10) == {"ok": 1}
    with pytest.raises(TimeoutError, match="pod gone: not within 3 s"):
        s.wait("pod gone", lambda: False, timeout_s=3)


def test_require_kinds_skips_naming_the_missing_api() -> None:
    from ailab.contract import Skip

    s = session(FakeApi())
    with pytest.raises(Skip, match=r"lacks Istio \(VirtualService networking.istio.io/v1 not served\)"):
        s.require_kinds([("networking.istio.io/v1", "VirtualService", "Istio"), ("v1", "Pod", "core")])


def test_merge_diff_turns_current_into_wanted() -> None:
    cur = {"a": 1, "b": {"c": 2, "d": 3}, "l": [1, 2], "x": 0}
    want = {"a": 1, "b": {"c": 5}, "l": [1]}
    patch = merge_diff(cur, want)
    assert patch == {"x": None, "b": {"c": 5, "d": None}, "l": [1]}
    assert merge(cur, patch) == want and merge_diff(want, want) == {}


def test_a_patched_then_removed_object_comes_back_as_it_was_before_the_run() -> None:
    ef = {
        "apiVersion": "networking.istio.io/v1alpha3",
        "kind": "EnvoyFilter",
        "metadata": {"name": "triton-local-ratelimit", "namespace": "ailab", "uid": "u-1"},
        "spec": {"token_bucket": {"max_tokens": 100}},
    }
    hpa = {
        "apiVersion": "autoscaling/v2",
        "kind": "HorizontalPodAutoscaler",
        "metadata": {"name": "triton-cpu", "namespace": "ailab"},
        "spec": {"maxReplicas": 4},
    }
    api = FakeApi([ef])
    s = session(api)
    s.patch(
        "networking.istio.io/v1alpha3",
        "EnvoyFilter",
        "triton-local-ratelimit",
        "ailab",
        {"spec": {"token_bucket": {"max_tokens": 500}}},
    )
    s.remove("networking.istio.io/v1alpha3", "EnvoyFilter", "triton-local-ratelimit", "ailab")
    s.apply(hpa)  # the run's own object in the stack's namespace
    assert s.close() == []
    back = api.get("networking.istio.io/v1alpha3", "EnvoyFilter", "triton-local-ratelimit", "ailab")
    assert back["spec"] == ef["spec"] and "uid" not in api.applied[-1]["metadata"]
    deleted = api.calls.index(("delete", "HorizontalPodAutoscaler ailab/triton-cpu"))
    recreated = api.calls.index(("apply", "EnvoyFilter ailab/triton-local-ratelimit"))
    assert deleted < recreated  # the run's replacements go before the stack's objects come back


def test_triton_copies_select_their_own_pods_without_the_stack_s_service_account() -> None:
    from workloads.cluster import pods
    from workloads.cluster.stack import StackView

    dep = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "triton-stable", "namespace": "ailab"},
        "spec": {
            "replicas": 3,
            "selector": {"matchLabels": {"app": "triton"}},
            "template": {
                "metadata": {"labels": {"app": "triton"}},
                "spec": {"serviceAccountName": "triton", "containers": [{"name": "tritonserver"}]},
            },
        },
    }
    view = StackView(1, manifests=[dep])
    c = pods.triton_copy(view, "triton", {"app": "triton", "tenant": "tenant-a", "version": "stable"}, "ailab-tenant-a")
    assert c["metadata"] == {"name": "triton", "namespace": "ailab-tenant-a"} and c["spec"]["replicas"] == 1
    assert c["spec"]["selector"] == {"matchLabels": {"app": "triton", "tenant": "tenant-a"}}
    assert "serviceAccountName" not in c["spec"]["template"]["spec"]
    assert dep["spec"]["template"]["spec"]["serviceAccountName"] == "triton"  # the view is not changed
