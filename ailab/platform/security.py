"""Security component: cert-manager (self-signed issuer, gateway TLS certificate), JWT RequestAuthentication
and AuthorizationPolicy for Triton, and NetworkPolicies for the lab namespace."""

from __future__ import annotations

from typing import Any

from ailab.platform.config import StackSettings
from ailab.platform.mesh import INGRESS_NS
from ailab.platform.model import HelmRelease, Plan, PlanInputs, meta
from ailab.platform.serving import PORTS, TRITON

CERT_NS = "cert-manager"


def certificates(s: StackSettings) -> list[dict[str, Any]]:
    """Self-signed Issuer and the gateway's TLS Certificate (secret ailab-gateway-tls, read by the Gateway)."""
    return [
        {
            "apiVersion": "cert-manager.io/v1",
            "kind": "Issuer",
            "metadata": meta("ailab-selfsigned", INGRESS_NS),
            "spec": {"selfSigned": {}},
        },
        {
            "apiVersion": "cert-manager.io/v1",
            "kind": "Certificate",
            "metadata": meta("ailab-gateway-tls", INGRESS_NS),
            "spec": {
                "secretName": "ailab-gateway-tls",
                "commonName": s.security.gateway_host,
                "dnsNames": [s.security.gateway_host],
                "duration": "2160h",
                "renewBefore": "360h",
                "privateKey": {"algorithm": "ECDSA", "size": 256},
                "issuerRef": {"name": "ailab-selfsigned", "kind": "Issuer", "group": "cert-manager.io"},
            },
        },
    ]


def jwt_policies(s: StackSettings, ns: str) -> list[dict[str, Any]]:
    """Triton accepts only requests with a valid JWT from the lab's issuer; Prometheus may scrape metrics."""
    selector = {"matchLabels": {"app": TRITON}}
    return [
        {
            "apiVersion": "security.istio.io/v1",
            "kind": "RequestAuthentication",
            "metadata": meta(TRITON, ns),
            "spec": {
                "selector": selector,
                "jwtRules": [
                    {"issuer": s.security.jwt_issuer, "jwksUri": s.security.jwks_uri, "forwardOriginalToken": False}
                ],
            },
        },
        {
            "apiVersion": "security.istio.io/v1",
            "kind": "AuthorizationPolicy",
            "metadata": meta(TRITON, ns),
            "spec": {
                "selector": selector,
                "action": "ALLOW",
                "rules": [
                    {
                        "from": [{"source": {"requestPrincipals": [f"{s.security.jwt_issuer}/*"]}}],
                        "to": [{"operation": {"ports": [str(PORTS["http"]), str(PORTS["grpc"])]}}],
                    },
                    {
                        "from": [{"source": {"namespaces": ["monitoring"]}}],
                        "to": [{"operation": {"ports": [str(PORTS["metrics"])], "methods": ["GET"]}}],
                    },
                ],
            },
        },
    ]


def network_policies(ns: str) -> list[dict[str, Any]]:
    """Default-deny ingress in the lab namespace; allow Triton from gateway/mesh/monitoring, Redis from Triton."""

    def ns_sel(name: str) -> dict[str, Any]:
        return {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": name}}}

    return [
        {
            "apiVersion": "networking.k8s.io/v1",
            "kind": "NetworkPolicy",
            "metadata": meta("default-deny-ingress", ns),
            "spec": {"podSelector": {}, "policyTypes": ["Ingress"]},
        },
        {
            "apiVersion": "networking.k8s.io/v1",
            "kind": "NetworkPolicy",
            "metadata": meta("allow-triton", ns),
            "spec": {
                "podSelector": {"matchLabels": {"app": TRITON}},
                "policyTypes": ["Ingress"],
                "ingress": [
                    {
                        "from": [ns_sel(INGRESS_NS), ns_sel("monitoring"), {"podSelector": {}}],
                        "ports": [{"port": p, "protocol": "TCP"} for p in PORTS.values()],
                    }
                ],
            },
        },
        {
            "apiVersion": "networking.k8s.io/v1",
            "kind": "NetworkPolicy",
            "metadata": meta("allow-redis-from-triton", ns),
            "spec": {
                "podSelector": {"matchLabels": {"app": "redis"}},
                "policyTypes": ["Ingress"],
                "ingress": [
                    {
                        "from": [{"podSelector": {"matchLabels": {"app": TRITON}}}],
                        "ports": [{"port": 6379, "protocol": "TCP"}],
                    }
                ],
            },
        },
    ]


def plan(s: StackSettings, at: PlanInputs) -> Plan:
    """Security component for the stack's settings."""
    ns = at.namespace
    p = Plan("security", "ailab:security:Security")
    p.releases.append(HelmRelease("cert-manager", CERT_NS, {"crds": {"enabled": True}}))
    p.manifests += certificates(s)
    p.manifests += jwt_policies(s, ns)
    if s.security.network_policies:
        p.manifests += network_policies(ns)
    return p
