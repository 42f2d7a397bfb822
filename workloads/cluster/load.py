"""Reaching the week's Triton from the runner and driving it with the lab's load generator.

Routes (how requests get into the cluster):
- `port-forward`: kubectl port-forward to the triton Service; one pod only (kubectl resolves a Service to a pod).
- `nodeport`: a NodePort Service the run creates beside the stack's (same selector), at a node's InternalIP; spread
  over every ready replica by kube-proxy. On kind the node IPs are reachable from the host on Linux.
- `ingress`: kubectl port-forward to the Istio ingress gateway; the mesh's VirtualService routes from there
  (weights, mirroring, fault injection, rate limits all apply).

Load itself is `workloads.serving.loadgen` (open loop, every latency kept, nearest-rank percentiles), imported
late: it pulls in tritonclient. `probe()` is a paced HTTP client that also reads which version answered.
"""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, Literal

from workloads.cluster.portforward import port_forward
from workloads.cluster.session import ClusterSession
from workloads.cluster.stack import StackView
from workloads.cluster.traffic import ProbeRow

Route = Literal["port-forward", "nodeport", "ingress"]
VERSION_HEADER = "x-ailab-version"


def node_address(nodes: list[dict[str, Any]]) -> str:
    """InternalIP of the first Ready node (where a NodePort answers); LookupError when none is Ready."""
    for n in nodes:
        ready = any(c["type"] == "Ready" and c["status"] == "True" for c in n.get("status", {}).get("conditions", []))
        ips = [a["address"] for a in n.get("status", {}).get("addresses", []) if a["type"] == "InternalIP"]
        if ready and ips:
            return ips[0]
    raise LookupError("no Ready node with an InternalIP: a NodePort cannot be reached")


def nodeport_service(name: str, namespace: str, selector: dict[str, str], port: int) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {
            "type": "NodePort",
            "selector": selector,
            "ports": [{"name": "http", "port": port, "targetPort": port}],
        },
    }


@contextmanager
def endpoint(
    s: ClusterSession,
    view: StackView,
    route: Route,
    selector: dict[str, str] | None = None,
    namespace: str | None = None,
) -> Iterator[str]:
    """host:port of Triton's HTTP endpoint through `route`; what the route needs is removed on exit."""
    ns = namespace or view.namespace
    http = view.port("http")
    kc = s.found.kubeconfig if s.found else None
    kx = s.found.context if s.found else None
    if route == "port-forward":
        with port_forward("svc/triton", http, ns, kc, kx) as local:
            yield f"127.0.0.1:{local}"
    elif route == "ingress":
        ins, svc, port = view.ingress()
        with port_forward(f"svc/{svc}", port, ins, kc, kx) as local:
            yield f"127.0.0.1:{local}"
    elif route == "nodeport":
        name = f"triton-np-{s.namespace[-6:]}"
        svc = s.apply(nodeport_service(name, ns, selector or {"app": "triton"}, http))
        node_port = svc["spec"]["ports"][0]["nodePort"]
        yield f"{node_address(s.nodes())}:{node_port}"
    else:
        raise ValueError(f"route {route!r}: allowed port-forward, nodeport, ingress")


def drive(url: str, model: str, qps: float, duration_s: float, warmup_s: float = 2.0, processes: int = 1) -> Any:
    """One open-loop HTTP run of the lab's load generator with the per-request timeline kept (a LoadResult)."""
    from workloads.serving import loadgen

    spec = loadgen.LoadSpec(
        url,
        model,
        "http",
        mode="open",
        qps=qps,
        warmup_s=warmup_s,
        duration_s=duration_s,
        timeout_s=10.0,
        timeline=True,
        processes=processes,
    )
    return loadgen.run(spec)


def infer_body(model_input: Any) -> bytes:
    """KServe v2 JSON request for the MLP's `input` tensor."""
    return json.dumps(
        {
            "inputs": [
                {
                    "name": "input",
                    "shape": list(model_input.shape),
                    "datatype": "FP32",
                    "data": model_input.ravel().tolist(),
                }
            ]
        }
    ).encode()


def probe(url: str, model: str, qps: float, duration_s: float, host: str | None = None) -> list[ProbeRow]:
    """Paced single requests for `duration_s`: (send time s, answering version, latency ms, ok) each.

    The version is the `x-ailab-version` response header the runner has the mesh set per route ("" without it)."""
    from workloads.models.mlp import sample_inputs

    body = infer_body(sample_inputs(1)[0])
    rows: list[ProbeRow] = []
    t0 = time.perf_counter()
    i = 0
    while (due := i / qps) < duration_s:  # request i is due at i/qps; none is sent past the window
        now = time.perf_counter() - t0
        if due > now:
            time.sleep(due - now)
        sent = time.perf_counter()
        req = urllib.request.Request(
            f"http://{url}/v2/models/{model}/infer",
            data=body,
            headers={"Content-Type": "application/json", **({"Host": host} if host else {})},
        )
        try:
            with urllib.request.urlopen(req, timeout=10) as r:
                r.read()
                rows.append((sent - t0, r.headers.get(VERSION_HEADER, ""), (time.perf_counter() - sent) * 1e3, True))
        except (urllib.error.URLError, TimeoutError, ConnectionError) as exc:
            hdr = getattr(exc, "headers", None)
            version = hdr.get(VERSION_HEADER, "") if hdr else ""
            rows.append((sent - t0, version, (time.perf_counter() - sent) * 1e3, False))
        i += 1
    return rows


def load_table_row(res: Any) -> list[Any]:
    """target, achieved, ok req/s, p50, p99, errors of a LoadResult (the lab's columns)."""
    return [
        res.target_qps,
        round(res.achieved_qps, 1),
        round(res.throughput_rps, 1),
        round(res.latency_ms.get("p50", float("nan")), 3),
        round(res.latency_ms.get("p99", float("nan")), 3),
        res.sent - res.ok,
    ]


LOAD_COLUMNS = [
    ("target", "req/s"),
    ("sent", "req/s"),
    ("ok", "req/s"),
    ("p50", "ms"),
    ("p99", "ms"),
    ("errors", "requests"),
]
