"""Finding the cluster and talking to its API server: where the lab looks, and the few calls runners make.

`connect(kubeconfig, context)` looks where kubectl and the official `kubernetes` client look (the explicit
kubeconfig, $KUBECONFIG, ~/.kube/config, the in-cluster service account), keeps the first API server that answers,
and otherwise raises `Skip` naming every place it looked and why each failed, plus what else the experiment needs.

`Api` is the whole surface the cluster runners use (apply, get, list, patch, delete, events, logs, API discovery);
`KubeApi` implements it with the `kubernetes` client's DynamicClient and server-side apply. Tests replace it with
a recorded fake: the API server is the one thing this workplace cannot run.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from ailab.contract import Skip

FIELD_MANAGER = "ailab-lab"
SA_TOKEN = Path("/var/run/secrets/kubernetes.io/serviceaccount/token")
DEFAULT_KUBECONFIG = Path("~/.kube/config")


class Api(Protocol):
    """What a cluster runner asks of the API server; objects are plain dicts in manifest (camelCase) form."""

    def apply(self, manifest: dict[str, Any]) -> dict[str, Any]: ...  # server-side apply

    def get(self, api_version: str, kind: str, name: str, namespace: str | None = None) -> dict[str, Any] | None: ...

    def list(
        self, api_version: str, kind: str, namespace: str | None = None, selector: str = ""
    ) -> list[dict[str, Any]]: ...

    def patch(
        self, api_version: str, kind: str, name: str, namespace: str | None, body: dict[str, Any]
    ) -> dict[str, Any]: ...  # JSON merge patch

    def delete(self, api_version: str, kind: str, name: str, namespace: str | None = None) -> bool: ...

    def has_kind(self, api_version: str, kind: str) -> bool: ...  # the API (a CRD's) is served

    def logs(self, name: str, namespace: str, container: str | None = None, tail: int = 200) -> str: ...

    def evict(self, name: str, namespace: str) -> tuple[bool, str]: ...  # Eviction API: (allowed, message)

    def raw(self, path: str) -> dict[str, Any]: ...  # GET a path of the API server (node proxy configz, ...)


@dataclass
class Found:
    """The cluster a runner talks to, and the way it was found (for the result's notes)."""

    api: Api
    source: str  # e.g. "~/.kube/config, context kind-ailab"
    server: str  # the API server's URL
    version: str  # the API server's gitVersion
    kubeconfig: str | None = None  # for kubectl (port-forward); None in-cluster
    context: str | None = None


@dataclass
class Search:
    """Where the lab looked for a cluster and what it found at each place."""

    looked: list[str] = field(default_factory=list)

    def reason(self, also_needs: Sequence[str] = ()) -> str:
        """'needs a Kubernetes cluster (looked for: ...; none reachable)' plus what else the experiment needs."""
        text = f"needs a Kubernetes cluster (looked for: {'; '.join(self.looked)}; none reachable)"
        if also_needs:
            text += f"; this experiment also needs: {', '.join(also_needs)}"
        return text


def candidates(
    kubeconfig: str | None, env: Mapping[str, str], home_config: Path = DEFAULT_KUBECONFIG
) -> list[tuple[str, Path | None]]:
    """Places to look, in kubectl's order: (label, kubeconfig file or None for the in-cluster account)."""
    out: list[tuple[str, Path | None]] = []
    if kubeconfig:
        out.append((f"kubeconfig={kubeconfig}", Path(kubeconfig).expanduser()))
    elif env.get("KUBECONFIG"):
        # kubectl merges a ':'-separated list; the client reads one file: take each in turn
        out += [(f"KUBECONFIG={f}", Path(f).expanduser()) for f in env["KUBECONFIG"].split(os.pathsep) if f]
    else:
        out.append((str(home_config), home_config.expanduser()))
    out.append(("in-cluster service account", None))
    return out


def connect(
    kubeconfig: str | None = None,
    context: str | None = None,
    also_needs: Sequence[str] = (),
    env: Mapping[str, str] | None = None,
    timeout_s: float = 5.0,
) -> Found:
    """The first reachable API server among the candidates; Skip naming all that were tried when none answers."""
    import kubernetes  # the official client; imported late (slow to import, and runners import cheaply)

    env = os.environ if env is None else env
    search = Search()
    if not kubeconfig and not env.get("KUBECONFIG"):
        search.looked.append("KUBECONFIG (unset)")
    for label, path in candidates(kubeconfig, env):
        if path is None:  # in-cluster
            if not env.get("KUBERNETES_SERVICE_HOST") or not SA_TOKEN.exists():
                search.looked.append(f"{label} (not running in a pod)")
                continue
            cfg = kubernetes.client.Configuration()
            try:
                kubernetes.config.load_incluster_config(client_configuration=cfg)
            except kubernetes.config.ConfigException as exc:
                search.looked.append(f"{label} ({exc})")
                continue
            where, kc, kctx = label, None, None
        else:
            if not path.exists():
                search.looked.append(f"{label} (no such file)")
                continue
            cfg = kubernetes.client.Configuration()
            try:
                kubernetes.config.load_kube_config(
                    config_file=str(path), context=context, client_configuration=cfg, persist_config=False
                )
            except (kubernetes.config.ConfigException, OSError, ValueError) as exc:
                search.looked.append(f"{label}{f' context {context}' if context else ''} ({exc})")
                continue
            _, active = kubernetes.config.list_kube_config_contexts(config_file=str(path))
            kctx = context or (active or {}).get("name")
            where, kc = f"{label}, context {kctx}", str(path)
        client = kubernetes.client.ApiClient(configuration=cfg)
        try:
            info = kubernetes.client.VersionApi(client).get_code(_request_timeout=timeout_s)
        except Exception as exc:  # noqa: BLE001 - any failure means "not reachable": say which and go on
            search.looked.append(f"{where} (API server {cfg.host} not answering: {type(exc).__name__})")
            continue
        return Found(KubeApi(client), where, cfg.host, info.git_version, kc, kctx)
    raise Skip(search.reason(also_needs))


class KubeApi:
    """`Api` over the official client's DynamicClient (discovery once, server-side apply as `ailab-lab`)."""

    def __init__(self, client: Any, cache_file: str | None = None) -> None:
        from kubernetes.dynamic import DynamicClient

        self._client = client
        self._dyn = DynamicClient(client, cache_file=cache_file)  # discovery, cached (default: a file in $TMPDIR)

    def _res(self, api_version: str, kind: str) -> Any:
        return self._dyn.resources.get(api_version=api_version, kind=kind)

    def apply(self, manifest: dict[str, Any]) -> dict[str, Any]:
        res = self._res(manifest["apiVersion"], manifest["kind"])
        md = manifest["metadata"]
        out = self._dyn.server_side_apply(
            res,
            body=manifest,
            name=md["name"],
            namespace=md.get("namespace") if res.namespaced else None,
            field_manager=FIELD_MANAGER,
            force_conflicts=True,
        )
        return out.to_dict()

    def get(self, api_version: str, kind: str, name: str, namespace: str | None = None) -> dict[str, Any] | None:
        from kubernetes.dynamic.exceptions import NotFoundError

        try:
            return self._res(api_version, kind).get(name=name, namespace=namespace).to_dict()
        except NotFoundError:
            return None

    def list(self, api_version: str, kind: str, namespace: str | None = None, selector: str = "") -> list[dict]:
        out = self._res(api_version, kind).get(namespace=namespace, label_selector=selector or None)
        return [i for i in out.to_dict().get("items", [])]

    def patch(self, api_version: str, kind: str, name: str, namespace: str | None, body: dict) -> dict[str, Any]:
        res = self._res(api_version, kind)
        return res.patch(
            body=body, name=name, namespace=namespace, content_type="application/merge-patch+json"
        ).to_dict()

    def delete(self, api_version: str, kind: str, name: str, namespace: str | None = None) -> bool:
        from kubernetes.dynamic.exceptions import NotFoundError

        try:
            self._res(api_version, kind).delete(name=name, namespace=namespace, propagation_policy="Foreground")
        except NotFoundError:
            return False
        return True

    def has_kind(self, api_version: str, kind: str) -> bool:
        from kubernetes.dynamic.exceptions import ResourceNotFoundError

        try:
            self._res(api_version, kind)
        except ResourceNotFoundError:
            return False
        return True

    def logs(self, name: str, namespace: str, container: str | None = None, tail: int = 200) -> str:
        import kubernetes

        core = kubernetes.client.CoreV1Api(self._client)
        return core.read_namespaced_pod_log(name, namespace, container=container, tail_lines=tail)

    def evict(self, name: str, namespace: str) -> tuple[bool, str]:
        import kubernetes

        core = kubernetes.client.CoreV1Api(self._client)
        body = kubernetes.client.V1Eviction(metadata=kubernetes.client.V1ObjectMeta(name=name, namespace=namespace))
        try:
            core.create_namespaced_pod_eviction(name, namespace, body)
        except kubernetes.client.ApiException as exc:
            if exc.status == 429:  # a PodDisruptionBudget refuses it
                return False, str(exc.body or exc.reason)
            raise
        return True, ""

    def raw(self, path: str) -> dict[str, Any]:
        import json

        # through the dynamic client's request (its auth and TLS); not deserialised into a ResourceInstance, since
        # answers such as a kubelet's configz carry no `kind`
        resp = self._dyn.request("get", path, serialize=False)
        return json.loads(resp.data)
