"""`connect()` and `KubeApi` (the official client's DynamicClient underneath) against an HTTP server that answers
like a Kubernetes API server with recorded responses.

The API server is the only thing faked (none can run in this workplace), at the HTTP level: the real `kubernetes`
client does discovery, server-side apply, merge patches, deletes, evictions and raw GETs, and the test checks the
requests it sent (paths, verbs, content types, field manager, label selectors) and how answers (404, 429) come back.
"""

from __future__ import annotations

import json
import threading
import urllib.parse
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import ClassVar

import pytest
import yaml

from workloads.cluster.kube import FIELD_MANAGER, KubeApi, connect


def resources(group_version: str, items: list[tuple[str, str, bool]]) -> dict:
    return {
        "kind": "APIResourceList",
        "groupVersion": group_version,
        "resources": [
            {
                "name": n,
                "singularName": "",
                "namespaced": ns,
                "kind": k,
                "verbs": ["create", "delete", "get", "list", "patch", "update", "watch"],
            }
            for n, k, ns in items
        ],
    }


DISCOVERY = {
    "/version/": {
        "major": "1",
        "minor": "31",
        "gitVersion": "v1.31.4",
        "gitCommit": "a78aa47129b8539636eb86a9d00e31b2720fe06b",
        "gitTreeState": "clean",
        "buildDate": "2024-12-10T18:05:24Z",
        "goVersion": "go1.22.9",
        "compiler": "gc",
        "platform": "linux/amd64",
    },
    "/api": {"kind": "APIVersions", "versions": ["v1"]},
    "/apis": {
        "kind": "APIGroupList",
        "apiVersion": "v1",
        "groups": [
            {
                "name": g,
                "versions": [{"groupVersion": f"{g}/v1", "version": "v1"}],
                "preferredVersion": {"groupVersion": f"{g}/v1", "version": "v1"},
            }
            for g in ("apps", "networking.istio.io")
        ],
    },
    "/api/v1": resources(
        "v1",
        [
            ("pods", "Pod", True),
            ("pods/eviction", "Eviction", True),
            ("pods/log", "Pod", True),
            ("namespaces", "Namespace", False),
            ("nodes", "Node", False),
            ("events", "Event", True),
        ],
    ),
    "/apis/apps/v1": resources("apps/v1", [("deployments", "Deployment", True)]),
    "/apis/networking.istio.io/v1": resources("networking.istio.io/v1", [("virtualservices", "VirtualService", True)]),
}
POD = {
    "apiVersion": "v1",
    "kind": "Pod",
    "metadata": {"name": "gpu-pod", "namespace": "lab", "resourceVersion": "7"},
    "spec": {"containers": [{"name": "c", "image": "x"}]},
}
NOT_FOUND = {
    "kind": "Status",
    "apiVersion": "v1",
    "status": "Failure",
    "reason": "NotFound",
    "code": 404,
    "message": 'pods "missing" not found',
}
PDB_REFUSED = {
    "kind": "Status",
    "apiVersion": "v1",
    "status": "Failure",
    "reason": "TooManyRequests",
    "code": 429,
    "message": "Cannot evict pod as it would violate the pod's disruption budget.",
}


class Recorded(BaseHTTPRequestHandler):
    seen: ClassVar[list[tuple[str, str, dict, str, str]]] = []

    def log_message(self, *_: object) -> None:
        pass

    def _answer(self, code: int, body: dict) -> None:
        data = json.dumps(body).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _route(self) -> None:
        url = urllib.parse.urlparse(self.path)
        query = dict(urllib.parse.parse_qsl(url.query))
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0)).decode()
        self.seen.append((self.command, url.path, query, self.headers.get("Content-Type", ""), body))
        p = url.path
        if self.command == "GET" and (p in DISCOVERY or p + "/" in DISCOVERY):  # /version and /version/ alike
            return self._answer(200, DISCOVERY.get(p) or DISCOVERY[p + "/"])
        if p == "/api/v1/namespaces/lab/pods/gpu-pod":
            if self.command == "PATCH":  # the API server answers with the whole object after the change
                sent = json.loads(body)
                return self._answer(200, {**POD, **sent, "metadata": {**POD["metadata"], "resourceVersion": "8"}})
            if self.command in ("GET", "DELETE"):
                return self._answer(200, POD if self.command == "GET" else {"kind": "Status", "status": "Success"})
        if p == "/api/v1/namespaces/lab/pods" and self.command == "GET":
            return self._answer(200, {"kind": "PodList", "apiVersion": "v1", "metadata": {}, "items": [POD]})
        if p == "/api/v1/namespaces/lab/pods/gpu-pod/log":
            data = b"GPU 0: NVIDIA H100 80GB HBM3 (UUID: GPU-2f3e)\n"
            self.send_response(200)
            self.send_header("Content-Type", "text/plain")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
            return None
        if p.endswith("/eviction") and self.command == "POST":
            return self._answer(429, PDB_REFUSED)
        if p == "/api/v1/nodes/ailab-worker/proxy/configz":
            return self._answer(200, {"kubeletconfig": {"topologyManagerPolicy": "single-numa-node"}})
        return self._answer(404, NOT_FOUND)

    do_GET = do_PATCH = do_DELETE = do_POST = _route  # noqa: N815 - BaseHTTPRequestHandler's naming


@pytest.fixture
def server() -> Iterator[str]:
    Recorded.seen = []
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Recorded)
    th = threading.Thread(target=httpd.serve_forever, daemon=True)
    th.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


@pytest.fixture
def api(server: str, tmp_path: Path) -> KubeApi:
    import kubernetes

    cfg = kubernetes.client.Configuration(host=server)
    return KubeApi(kubernetes.client.ApiClient(cfg), cache_file=str(tmp_path / "discovery.json"))


def test_server_side_apply_sends_the_lab_s_field_manager_and_forces(api: KubeApi) -> None:
    out = api.apply({k: v for k, v in POD.items()})
    assert out["metadata"]["resourceVersion"] == "8"
    method, path, query, ctype, body = Recorded.seen[-1]
    assert (method, path, ctype) == ("PATCH", "/api/v1/namespaces/lab/pods/gpu-pod", "application/apply-patch+yaml")
    assert query == {"fieldManager": FIELD_MANAGER, "force": "true"} and json.loads(body)["kind"] == "Pod"


def test_get_list_patch_delete_and_missing_objects(api: KubeApi) -> None:
    assert api.get("v1", "Pod", "gpu-pod", "lab")["spec"]["containers"][0]["name"] == "c"
    assert api.get("v1", "Pod", "missing", "lab") is None
    assert [p["metadata"]["name"] for p in api.list("v1", "Pod", "lab", "app=triton,version=stable")] == ["gpu-pod"]
    assert Recorded.seen[-1][2] == {"labelSelector": "app=triton,version=stable"}
    api.patch("v1", "Pod", "gpu-pod", "lab", {"metadata": {"labels": {"x": None}}})
    assert Recorded.seen[-1][3] == "application/merge-patch+json"
    assert json.loads(Recorded.seen[-1][4]) == {"metadata": {"labels": {"x": None}}}
    assert api.delete("v1", "Pod", "gpu-pod", "lab") is True
    assert Recorded.seen[-1][:3] == (
        "DELETE",
        "/api/v1/namespaces/lab/pods/gpu-pod",
        {"propagationPolicy": "Foreground"},
    )
    assert api.delete("v1", "Pod", "missing", "lab") is False


def test_served_kinds_evictions_logs_and_raw_paths(api: KubeApi) -> None:
    assert api.logs("gpu-pod", "lab", tail=50).startswith("GPU 0: NVIDIA H100")
    assert Recorded.seen[-1][2] == {"tailLines": "50"}
    assert api.has_kind("networking.istio.io/v1", "VirtualService")
    assert not api.has_kind("keda.sh/v1alpha1", "ScaledObject")
    allowed, message = api.evict("gpu-pod", "lab")
    assert not allowed and "disruption budget" in message
    assert Recorded.seen[-1][:2] == ("POST", "/api/v1/namespaces/lab/pods/gpu-pod/eviction")
    assert api.raw("/api/v1/nodes/ailab-worker/proxy/configz")["kubeletconfig"]["topologyManagerPolicy"] == (
        "single-numa-node"
    )


def test_connect_through_a_kubeconfig_reports_where_and_which_version(server: str, tmp_path: Path) -> None:
    cfg = tmp_path / "kubeconfig"
    cfg.write_text(
        yaml.safe_dump(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "current-context": "kind-ailab",
                "clusters": [{"name": "kind-ailab", "cluster": {"server": server}}],
                "contexts": [
                    {"name": "kind-ailab", "context": {"cluster": "kind-ailab", "user": "u"}},
                    {"name": "other", "context": {"cluster": "kind-ailab", "user": "u"}},
                ],
                "users": [{"name": "u", "user": {"token": "t"}}],
            }
        )
    )
    found = connect(env={"KUBECONFIG": str(cfg)}, timeout_s=5)
    assert (found.source, found.server, found.version) == (f"KUBECONFIG={cfg}, context kind-ailab", server, "v1.31.4")
    assert (found.kubeconfig, found.context) == (str(cfg), "kind-ailab")
    assert connect(str(cfg), context="other", env={}).context == "other"
