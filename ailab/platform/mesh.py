"""Mesh component: Istio (base, istiod, ingress gateway), weighted routing and mirroring for Triton,
circuit breaking and outlier detection, and a local rate limit on the Triton sidecars."""

from __future__ import annotations

from typing import Any

from ailab.platform.config import StackSettings
from ailab.platform.model import HelmRelease, Plan, PlanInputs, meta
from ailab.platform.serving import PORTS, TRITON

ISTIO_NS = "istio-system"
INGRESS_NS = "istio-ingress"
GATEWAY = "ailab-gateway"


def releases(s: StackSettings) -> list[HelmRelease]:
    """istio base (CRDs) -> CNI node agent -> istiod -> ingress gateway.

    With the CNI agent (a HOST_ACCESS exception in istio-system) injected pods get no istio-init container with
    NET_ADMIN/NET_RAW, which neither the restricted nor the baseline Pod Security profile admits."""
    cni: dict[str, Any] = {}
    if s.cluster.target == "k3s":
        cni["global"] = {"platform": "k3s"}  # k3s keeps its CNI binaries and config outside /opt/cni, /etc/cni
    return [
        HelmRelease("istio-base", ISTIO_NS, {"defaultRevision": "default"}),
        HelmRelease("istio-cni", ISTIO_NS, cni),
        HelmRelease("istiod", ISTIO_NS, {"meshConfig": {"enableTracing": True}, "pilot": {"cni": {"enabled": True}}}),
        HelmRelease(
            "istio-ingress",
            INGRESS_NS,
            {
                "labels": {"istio": "ingressgateway"},
                # the chart's default pod context is only this sysctl (bind 80/443 as UID 1337): the restricted
                # namespace also needs seccomp; its container context already drops ALL, non-root, read-only root
                "securityContext": {
                    "sysctls": [{"name": "net.ipv4.ip_unprivileged_port_start", "value": "0"}],
                    "seccompProfile": {"type": "RuntimeDefault"},
                },
            },
        ),
    ]


def gateway(s: StackSettings) -> dict[str, Any]:
    """Gateway on the ingress: HTTP, plus HTTPS with cert-manager's certificate when security is on."""
    servers: list[dict[str, Any]] = [{"port": {"number": 80, "name": "http", "protocol": "HTTP"}, "hosts": ["*"]}]
    if s.security.enabled:
        servers.append(
            {
                "port": {"number": 443, "name": "https", "protocol": "HTTPS"},
                "hosts": [s.security.gateway_host],
                "tls": {"mode": "SIMPLE", "credentialName": "ailab-gateway-tls"},
            }
        )
    return {
        "apiVersion": "networking.istio.io/v1",
        "kind": "Gateway",
        "metadata": meta(GATEWAY, INGRESS_NS),
        "spec": {"selector": {"istio": "ingressgateway"}, "servers": servers},
    }


def virtual_service(s: StackSettings, ns: str) -> dict[str, Any]:
    """Weighted routing stable/canary from mesh.weights, optionally mirroring live traffic to the canary."""
    host = f"{TRITON}.{ns}.svc.cluster.local"
    route: dict[str, Any] = {
        "route": [
            {"destination": {"host": host, "subset": subset, "port": {"number": PORTS["http"]}}, "weight": w}
            for subset, w in s.mesh.weights.items()
        ],
        "timeout": "30s",
        "retries": {"attempts": 2, "perTryTimeout": "10s", "retryOn": "5xx,reset,connect-failure"},
    }
    if s.mesh.mirror.enabled:
        route["mirror"] = {"host": host, "subset": "canary", "port": {"number": PORTS["http"]}}
        route["mirrorPercentage"] = {"value": s.mesh.mirror.percent}
    return {
        "apiVersion": "networking.istio.io/v1",
        "kind": "VirtualService",
        "metadata": meta(TRITON, ns),
        "spec": {"hosts": [host, "*"], "gateways": [f"{INGRESS_NS}/{GATEWAY}", "mesh"], "http": [route]},
    }


def destination_rule(s: StackSettings, ns: str) -> dict[str, Any]:
    """Subsets by version label; connection-pool limits and outlier detection when circuit breaking is on."""
    spec: dict[str, Any] = {
        "host": f"{TRITON}.{ns}.svc.cluster.local",
        "subsets": [{"name": v, "labels": {"version": v}} for v in ("stable", "canary")],
    }
    cb = s.mesh.circuit_breaker
    if cb:
        spec["trafficPolicy"] = {
            "connectionPool": {
                "http": {
                    "http1MaxPendingRequests": cb.max_pending_requests,
                    "maxRequestsPerConnection": cb.max_requests_per_connection,
                }
            },
            "outlierDetection": {
                "consecutive5xxErrors": cb.consecutive_5xx_errors,
                "interval": cb.interval,
                "baseEjectionTime": cb.base_ejection_time,
                "maxEjectionPercent": cb.max_ejection_percent,
            },
        }
    return {
        "apiVersion": "networking.istio.io/v1",
        "kind": "DestinationRule",
        "metadata": meta(TRITON, ns),
        "spec": spec,
    }


def rate_limit(s: StackSettings, ns: str) -> dict[str, Any]:
    """Envoy local rate limit (token bucket) on inbound traffic of Triton's sidecars."""
    rl = s.mesh.rate_limit
    assert rl is not None
    config = {
        "@type": "type.googleapis.com/udpa.type.v1.TypedStruct",
        "type_url": "type.googleapis.com/envoy.extensions.filters.http.local_ratelimit.v3.LocalRateLimit",
        "value": {
            "stat_prefix": "http_local_rate_limiter",
            "token_bucket": {
                "max_tokens": rl.max_tokens,
                "tokens_per_fill": rl.tokens_per_fill,
                "fill_interval": rl.fill_interval,
            },
            "filter_enabled": {
                "runtime_key": "local_rate_limit_enabled",
                "default_value": {"numerator": 100, "denominator": "HUNDRED"},
            },
            "filter_enforced": {
                "runtime_key": "local_rate_limit_enforced",
                "default_value": {"numerator": 100, "denominator": "HUNDRED"},
            },
        },
    }
    return {
        "apiVersion": "networking.istio.io/v1alpha3",
        "kind": "EnvoyFilter",
        "metadata": meta(f"{TRITON}-local-ratelimit", ns),
        "spec": {
            "workloadSelector": {"labels": {"app": TRITON}},
            "configPatches": [
                {
                    "applyTo": "HTTP_FILTER",
                    "match": {
                        "context": "SIDECAR_INBOUND",
                        "listener": {
                            "filterChain": {"filter": {"name": "envoy.filters.network.http_connection_manager"}}
                        },
                    },
                    "patch": {
                        "operation": "INSERT_BEFORE",
                        "value": {"name": "envoy.filters.http.local_ratelimit", "typed_config": config},
                    },
                }
            ],
        },
    }


def plan(s: StackSettings, at: PlanInputs) -> Plan:
    """Mesh component for the stack's settings."""
    ns = at.namespace
    p = Plan("mesh", "ailab:mesh:Istio", releases=releases(s))
    p.manifests += [gateway(s), virtual_service(s, ns), destination_rule(s, ns)]
    if s.mesh.rate_limit:
        p.manifests.append(rate_limit(s, ns))
    p.outputs["weights"] = dict(s.mesh.weights)
    return p
