"""The gateway stack a runner starts: a Triton repository with two versions of one model, tritonserver and HAProxy
(through the context's local platform), and the HAProxy spec that routes between the versions.

Routing between versions: the `canary` backend has one server per version, weighted; each server is a small
per-version frontend of the same HAProxy whose backend rewrites `/v2/models/<m>/infer` to
`/v2/models/<m>/versions/<v>/infer` before Triton. Server weights are what HAProxy's runtime API changes
(`set weight canary/v2 50`), and its Prometheus exporter reports per-server responses and weights.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from ailab.contract import Context, Skip, paths
from workloads.gateway.load import SERVER_HEADER

MODEL = "mlp"
CANARY = "canary"  # the weighted backend's name
VERSIONS = (1, 2)
# the generated gateway dashboard (ailab/observability, `lab dashboards`): its panels' queries are the runners' PromQL
DASHBOARD = paths.REPO_ROOT / "dashboards" / "grafana" / "gateway.json"
SPLIT_PANEL = "Canary split: share of 2xx responses by server"


def panel_query(title: str) -> str:
    """The PromQL of the one-query panel `title` of the gateway dashboard; KeyError naming what is there if absent."""
    import json

    panels = {p.get("title"): p for p in json.loads(DASHBOARD.read_text()).get("panels", [])}
    if title not in panels:
        raise KeyError(f"{DASHBOARD}: no panel titled {title!r} (panels: {sorted(panels)})")
    ((target,),) = [panels[title]["targets"]]
    return str(target["expr"])


def version_server(v: int) -> str:
    return f"v{v}"


def canary_spec(weights: dict[int, int], health_check: bool = False) -> dict[str, Any]:
    """HAProxy spec (the dict form of ailab.local.services.haproxy.GatewaySpec): frontend `api` -> weighted versions.

    health_check: HAProxy checks each version's readiness (`/v2/models/<m>/ready`, rewritten per version) and takes
    a version that is not ready out of the rotation itself."""
    frontends: list[dict[str, Any]] = [{"name": "api", "default_backend": CANARY}]
    backends: list[dict[str, Any]] = [
        {
            "name": CANARY,
            "servers": [
                {"name": version_server(v), "target": f"haproxy.{version_server(v)}", "weight": w}
                for v, w in weights.items()
            ],
            "server_header": SERVER_HEADER,
            "health_check": f"/v2/models/{MODEL}/ready" if health_check else None,
        }
    ]
    for v in weights:
        frontends.append({"name": version_server(v), "default_backend": f"triton_v{v}"})
        backends.append(
            {
                "name": f"triton_v{v}",
                "servers": [{"name": "triton", "target": "triton.http"}],
                # inference and readiness of the model go to this version (the canary's health check uses ready)
                "replace_path": [r"^/v2/models/([^/]+)/(infer|ready)$", rf"/v2/models/\1/versions/{v}/\2"],
            }
        )
    return {"frontends": frontends, "backends": backends}


def limit_spec(requests_per_s: int) -> dict[str, Any]:
    """Two frontends on one Triton backend: `open` (no limit) and `limited` (admits requests_per_s, else 429)."""
    return {
        "frontends": [
            {"name": "open", "default_backend": "triton"},
            {"name": "limited", "default_backend": "triton", "rate_limit": {"requests": requests_per_s, "period_s": 1}},
        ],
        "backends": [{"name": "triton", "servers": [{"name": "triton", "target": "triton.http"}]}],
    }


def security_spec(pki: Any) -> dict[str, Any]:
    """Four frontends on one Triton backend: plain, TLS only, JWT only, TLS + JWT with the JSON audit log."""
    from workloads.gateway.auth import AUDIENCE, ISSUER  # cryptography, only for the runners that need it

    fronts = [("plain", False, False), ("tls", True, False), ("jwt", False, True), ("secure", True, True)]
    return {
        "frontends": [
            {"name": n, "default_backend": "triton", "tls": t, "jwt": j, "access_log": n == "secure"}
            for n, t, j in fronts
        ],
        "backends": [{"name": "triton", "servers": [{"name": "triton", "target": "triton.http"}]}],
        "tls": {"cert": str(pki.server_cert), "key": str(pki.server_key)},
        "jwt": {"public_key": str(pki.jwt_public), "alg": "RS256", "audience": AUDIENCE, "issuer": ISSUER},
    }


@dataclass
class Gateway:
    plat: Any  # the LocalPlatform
    socket: str  # HAProxy runtime API
    config: str  # the generated haproxy.cfg

    def url(self, frontend: str, path: str = f"/v2/models/{MODEL}/infer", scheme: str = "http") -> str:
        return f"{scheme}://127.0.0.1:{self.plat.port('haproxy', frontend)}{path}"

    @property
    def log(self) -> str:
        """HAProxy's log file (its stdout): the JSON access/audit lines of frontends with access_log."""
        return str(self.plat.record("haproxy").log)

    @property
    def metrics_url(self) -> str:
        return self.plat.url("haproxy", "metrics") + "/metrics"

    @property
    def triton_url(self) -> str:
        return self.plat.url("triton", "http")

    @property
    def prometheus_url(self) -> str:
        """The platform's Prometheus (started with `gateway(..., prometheus=...)`), scraping HAProxy's exporter."""
        return self.plat.url("prometheus", "http")


HAPROXY_PATHS = ("/usr/sbin/haproxy",)  # Debian's, when /usr/sbin is not on PATH


def require_haproxy() -> None:
    """Skip (with the reason) where HAProxy is not installed, before anything starts."""
    import shutil
    from pathlib import Path

    if shutil.which("haproxy") is None and not any(Path(p).exists() for p in HAPROXY_PATHS):
        raise Skip("needs HAProxy 2.6 (apt-get install haproxy; scripts/setup-system.sh installs it)")


@contextmanager
def gateway(
    ctx: Context, spec: dict[str, Any], explicit: bool = False, prometheus: str | None = None
) -> Iterator[Gateway]:
    """Build the two-version repository, start tritonserver + HAProxy with `spec`, stop both on exit.

    prometheus: a scrape interval ("1s"): also start the platform's Prometheus scraping HAProxy's exporter (job
    `haproxy`) at that interval, with a fresh TSDB."""
    require_haproxy()
    from workloads.serving.repository import DynamicBatching, VersionPolicy, build_repository, mlp_spec

    repo = build_repository(
        [
            mlp_spec(
                MODEL,
                versions=VERSIONS,
                version_policy=VersionPolicy("all"),
                dynamic_batching=DynamicBatching(preferred_batch_sizes=(8, 16), max_queue_delay_us=1000),
            )
        ],
        ctx.workdir / "models",
        n_gpus=0,
    )
    options: dict[str, Any] = {"triton.model_repository": repo, "haproxy.spec": spec}
    if explicit:
        options |= {"triton.model_control_mode": "explicit", "triton.load_models": [MODEL]}
    services = ["triton", "haproxy"]
    state = ctx.workdir / "st"  # short: HAProxy's runtime socket path must fit in 107 characters
    if prometheus is not None:
        import shutil

        services.append("prometheus")
        options |= {"prometheus.scrape": ["haproxy"], "prometheus.scrape_interval": prometheus}
        # an earlier run's TSDB would replay its series into this run's window
        shutil.rmtree(state / "data" / "prometheus", ignore_errors=True)
    with ctx.platform(services=services, state_dir=state, options=options) as plat:
        info = plat.record("haproxy").info or {}
        yield Gateway(plat, info["runtime_socket"], info["config"])
