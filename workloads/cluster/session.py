"""One experiment's time on the cluster: what it creates or changes is undone on the way out, also on failure.

    with cluster_session(ctx, p, also_needs=["GPU nodes"]) as s:
        s.apply(pod_manifest)                       # created in the run's own namespace, deleted at the end
        s.patch("networking.istio.io/v1", "VirtualService", "triton", "ailab", {...})  # restored at the end
        pod = s.wait("pod gpu-1 scheduled", lambda: scheduled(s.get_pod("gpu-1")), timeout_s=120)

Every object the session creates carries `lab.ailab.dev/experiment=<id>` and lives, unless the experiment names a
stack namespace, in a namespace of its own (`ailab-x-<id>-<6 hex>`), deleted last. Objects of the week stack
that an experiment changes (weights, HPA behaviour, replicas) are snapshotted before the first change and put
back as they were. Cleanup failures are raised when the run itself succeeded, and attached as a note to the
exception when it did not, so leftovers are never silent.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, TypeVar

from pydantic import Field

from ailab.contract import Context, Params, Skip
from workloads.cluster.kube import Api, Found, connect

T = TypeVar("T")
EXPERIMENT_LABEL = "lab.ailab.dev/experiment"
MANAGED = {"app.kubernetes.io/managed-by": "ailab-lab"}
CLUSTER_SCOPED = {"Namespace", "Node", "PriorityClass", "ClusterRole", "ClusterRoleBinding", "RuntimeClass"}


class ClusterParams(Params):
    """Where the cluster is; every cluster runner's parameters extend this."""

    kubeconfig: str | None = Field(default=None, description="kubeconfig file (default: $KUBECONFIG, ~/.kube/config)")
    kube_context: str | None = Field(default=None, description="kubeconfig context (default: the current one)")
    week: int | None = Field(
        default=None, ge=1, le=13, description="the week stack deployed on the cluster (default: the day's week)"
    )


@dataclass(frozen=True)
class Ref:
    api_version: str
    kind: str
    name: str
    namespace: str | None

    @classmethod
    def of(cls, m: dict[str, Any]) -> Ref:
        md = m["metadata"]
        return cls(m["apiVersion"], m["kind"], md["name"], md.get("namespace"))

    def __str__(self) -> str:
        return f"{self.kind} {self.namespace + '/' if self.namespace else ''}{self.name}"


class ClusterSession:
    """Applies, patches, waits and reads on behalf of one experiment; undoes its changes in `close()`."""

    def __init__(
        self,
        api: Api,
        experiment_id: str,
        namespace: str | None = None,
        log: Callable[[str], None] = print,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
        found: Found | None = None,
    ) -> None:
        self.found = found  # how the cluster was found (for notes); None when built around a bare Api
        self.api, self.experiment_id, self.log, self.clock, self.sleep = api, experiment_id, log, clock, sleep
        self.created: list[Ref] = []
        self.snapshots: dict[Ref, dict[str, Any]] = {}
        self.removed: dict[Ref, dict[str, Any]] = {}
        self.namespace = namespace or f"ailab-x-{experiment_id.replace('.', '-')}-{secrets.token_hex(3)}"
        self._own_namespace = namespace is None
        if self._own_namespace:
            self.apply({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": self.namespace}})

    # --- changing the cluster -------------------------------------------------------------------------------

    def apply(self, manifest: dict[str, Any]) -> dict[str, Any]:
        """Server-side apply; a new object is deleted at the end, an existing one restored to its snapshot."""
        m = {**manifest, "metadata": dict(manifest["metadata"])}
        md = m["metadata"]
        md["labels"] = {**md.get("labels", {}), **MANAGED, EXPERIMENT_LABEL: self.experiment_id}
        if m["kind"] not in CLUSTER_SCOPED and not md.get("namespace"):
            md["namespace"] = self.namespace
        ref = Ref.of(m)
        before = self.api.get(ref.api_version, ref.kind, ref.name, ref.namespace)
        if before is None:
            if ref not in self.created:
                self.created.append(ref)
        else:
            self.snapshots.setdefault(ref, before)
        return self.api.apply(m)

    def patch(self, api_version: str, kind: str, name: str, namespace: str | None, body: dict) -> dict[str, Any]:
        """JSON merge patch of an existing object (a stack's); it is put back as it was at the end."""
        ref = Ref(api_version, kind, name, namespace)
        if ref not in self.snapshots and ref not in self.created:
            before = self.api.get(api_version, kind, name, namespace)
            if before is None:
                raise LookupError(f"{ref} does not exist: is the week's stack deployed (`pulumi up -s weekNN`)?")
            self.snapshots[ref] = before
        return self.api.patch(api_version, kind, name, namespace, body)

    def remove(self, api_version: str, kind: str, name: str, namespace: str | None) -> bool:
        """Delete a stack object for part of the run (a rate limit, a circuit breaker); re-created at the end."""
        ref = Ref(api_version, kind, name, namespace)
        before = self.api.get(api_version, kind, name, namespace)
        if before is None:
            return False
        # re-create it as it was before the run, not as a patch of this run left it
        self.removed.setdefault(ref, self.snapshots.pop(ref, before))
        return self.api.delete(api_version, kind, name, namespace)

    def delete(self, api_version: str, kind: str, name: str, namespace: str | None = None) -> bool:
        """Delete an object now (a pod, in a chaos drill); not recorded for cleanup."""
        return self.api.delete(api_version, kind, name, self._ns(kind, namespace))

    # --- reading ------------------------------------------------------------------------------------------------

    def get(self, api_version: str, kind: str, name: str, namespace: str | None = None) -> dict[str, Any] | None:
        return self.api.get(api_version, kind, name, self._ns(kind, namespace))

    def _ns(self, kind: str, namespace: str | None) -> str | None:
        return None if kind in CLUSTER_SCOPED else (namespace or self.namespace)

    def pods(self, selector: str = "", namespace: str | None = None) -> list[dict[str, Any]]:
        return self.api.list("v1", "Pod", namespace or self.namespace, selector)

    def events(self, namespace: str | None = None) -> list[dict[str, Any]]:
        return self.api.list("v1", "Event", namespace or self.namespace)

    def nodes(self) -> list[dict[str, Any]]:
        return self.api.list("v1", "Node")

    def require_kinds(self, kinds: Sequence[tuple[str, str, str]]) -> None:
        """Skip unless every (apiVersion, kind, what provides it) is served, e.g. Istio's VirtualService."""
        missing = [f"{what} ({kind} {av} not served)" for av, kind, what in kinds if not self.api.has_kind(av, kind)]
        if missing:
            raise Skip(f"the cluster lacks {', '.join(missing)}: deploy the week's stack that turns it on")

    def forward(self, target: str, port: int, namespace: str) -> Any:
        """kubectl port-forward to `target` (svc/x, pod/y) through the kubeconfig this session uses; yields the
        local port (a context manager)."""
        from workloads.cluster.portforward import port_forward

        kc, kx = (self.found.kubeconfig, self.found.context) if self.found else (None, None)
        return port_forward(target, port, namespace, kc, kx)

    # --- waiting ------------------------------------------------------------------------------------------------

    def wait(self, what: str, check: Callable[[], T | None], timeout_s: float, poll_s: float = 1.0) -> T:
        """Poll `check` until it returns a truthy value; TimeoutError naming `what` after timeout_s."""
        deadline = self.clock() + timeout_s
        while True:
            value = check()
            if value:
                return value
            if self.clock() >= deadline:
                raise TimeoutError(f"{what}: not within {timeout_s:g} s")
            self.sleep(poll_s)

    def sample(self, read: Callable[[], T], duration_s: float, every_s: float = 1.0) -> list[tuple[float, T]]:
        """(wall-clock time, read()) every `every_s` for `duration_s`: replica counts, ready pods, ..."""
        out: list[tuple[float, T]] = []
        end = self.clock() + duration_s
        while self.clock() < end:
            out.append((self.clock(), read()))
            self.sleep(every_s)
        return out

    def wait_rollout(self, name: str, namespace: str | None = None, timeout_s: float = 600) -> dict[str, Any]:
        """A Deployment whose updated, ready and available replicas all equal spec.replicas."""
        from workloads.cluster.objects import deployment_rolled_out

        def done() -> dict[str, Any] | None:
            d = self.get("apps/v1", "Deployment", name, namespace)
            return d if d is not None and deployment_rolled_out(d) else None

        return self.wait(f"Deployment {name} rolled out", done, timeout_s, poll_s=2.0)

    # --- undoing ------------------------------------------------------------------------------------------------

    def close(self) -> list[str]:
        """Restore what was changed, delete what was created (newest first), re-create what was removed (after
        the run's own replacements are gone), then delete the run's namespace.

        Returns what could not be undone (empty when all went well)."""
        problems: list[str] = []
        for ref, before in self.snapshots.items():
            try:
                now = self.api.get(ref.api_version, ref.kind, ref.name, ref.namespace)
                if now is None:
                    problems.append(f"{ref}: deleted during the run, cannot be restored")
                    continue
                back = merge_diff(now.get("spec") or {}, before.get("spec") or {})
                if back:
                    self.api.patch(ref.api_version, ref.kind, ref.name, ref.namespace, {"spec": back})
            except Exception as exc:  # noqa: BLE001 - keep undoing the rest; report every failure
                problems.append(f"{ref}: restore failed ({type(exc).__name__}: {exc})")
        ns_ref = Ref("v1", "Namespace", self.namespace, None)
        for ref in reversed(self.created):
            if ref == ns_ref or (self._own_namespace and ref.namespace == self.namespace):
                continue  # deleted with the namespace
            try:
                self.api.delete(ref.api_version, ref.kind, ref.name, ref.namespace)
            except Exception as exc:  # noqa: BLE001
                problems.append(f"{ref}: delete failed ({type(exc).__name__}: {exc})")
        for ref, before in self.removed.items():
            try:
                md = {
                    k: v
                    for k, v in before["metadata"].items()
                    if k not in ("managedFields", "resourceVersion", "uid", "creationTimestamp", "generation")
                }
                self.api.apply({**{k: v for k, v in before.items() if k != "status"}, "metadata": md})
            except Exception as exc:  # noqa: BLE001
                problems.append(f"{ref}: re-create failed ({type(exc).__name__}: {exc})")
        if self._own_namespace and ns_ref in self.created:
            try:
                self.api.delete("v1", "Namespace", self.namespace)
            except Exception as exc:  # noqa: BLE001
                problems.append(f"{ns_ref}: delete failed ({type(exc).__name__}: {exc})")
        for p in problems:
            self.log(f"cleanup: {p}")
        return problems


def merge_diff(current: dict[str, Any], wanted: dict[str, Any]) -> dict[str, Any]:
    """The JSON merge patch (RFC 7386) that turns `current` into `wanted`: changed keys, None for removed ones.
    Lists are replaced whole, as merge patch does."""
    out: dict[str, Any] = {}
    for k in current.keys() - wanted.keys():
        out[k] = None
    for k, v in wanted.items():
        cur = current.get(k)
        if isinstance(v, dict) and isinstance(cur, dict):
            sub = merge_diff(cur, v)
            if sub:
                out[k] = sub
        elif cur != v or k not in current:
            out[k] = v
    return out


@contextmanager
def managed(session: ClusterSession) -> Iterator[ClusterSession]:
    """Close the session on every exit: leftovers raise after a good run, or annotate the run's own error."""
    try:
        yield session
    except BaseException as exc:
        problems = session.close()
        if problems:
            exc.add_note("cleanup left behind: " + "; ".join(problems))
        raise
    problems = session.close()
    if problems:
        raise RuntimeError("cleanup left behind: " + "; ".join(problems))


@contextmanager
def cluster_session(
    ctx: Context,
    p: ClusterParams,
    also_needs: Sequence[str] = (),
    namespace: str | None = None,
    connector: Callable[..., Found] | None = None,
) -> Iterator[ClusterSession]:
    """Connect (or Skip naming where it looked and what else is needed) and yield a session cleaned up on exit."""
    found = (connector or connect)(kubeconfig=p.kubeconfig, context=p.kube_context, also_needs=also_needs)
    ctx.log(f"cluster: {found.source}, API server {found.server} ({found.version})")
    s = ClusterSession(found.api, ctx.experiment_id, namespace, log=ctx.log, found=found)
    with managed(s):
        yield s
