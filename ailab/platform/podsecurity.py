"""The week stacks' pod security baseline, in one place: the security contexts every lab pod gets, the few
system pods allowed outside the Pod Security Standards' *restricted* profile (each with its reason), the
namespace levels derived from them, which pods may call the Kubernetes API, and the checker the policy tests
run over every rendered manifest of every week.

The rules are the Pod Security Standards as Kubernetes documents them
(https://kubernetes.io/docs/concepts/security/pod-security-standards/, *baseline* and *restricted*), plus the
lab's own: a high UID, a read-only root filesystem, liveness and readiness probes on long-running containers,
no service-account token where the pod does not call the API, and secrets mounted as files, never as
environment variables. docs/security.md explains each.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

# The lab's images run as their `ailab` user (workloads/images/*/Dockerfile: useradd --uid 10001); third-party
# images without a fixed high UID run as the same UID (none of them needs a passwd entry: see each builder).
LAB_UID = 10001
MIN_UID = 10000  # a UID below this may collide with a host account (the kubelet, a node's first users)
SYSTEM_NS = "ailab-system"  # the lab's node agents that need the host (see HOST_ACCESS)
PSS_VERSION = "v1.30"  # the profile version the labels pin: the Kubernetes version the manifests are validated for

# --- the Pod Security Standards, as documented -------------------------------------------------------------
BASELINE_CAPABILITIES = frozenset(
    {
        "AUDIT_WRITE",
        "CHOWN",
        "DAC_OVERRIDE",
        "FOWNER",
        "FSETID",
        "KILL",
        "MKNOD",
        "NET_BIND_SERVICE",
        "SETFCAP",
        "SETGID",
        "SETPCAP",
        "SETUID",
        "SYS_CHROOT",
    }
)
RESTRICTED_CAPABILITIES = frozenset({"NET_BIND_SERVICE"})
SAFE_SYSCTLS = frozenset(
    {
        "kernel.shm_rmid_forced",
        "net.ipv4.ip_local_port_range",
        "net.ipv4.ip_unprivileged_port_start",
        "net.ipv4.tcp_syncookies",
        "net.ipv4.ping_group_range",
        "net.ipv4.ip_local_reserved_ports",
        "net.ipv4.tcp_keepalive_time",
        "net.ipv4.tcp_fin_timeout",
        "net.ipv4.tcp_keepalive_intvl",
        "net.ipv4.tcp_keepalive_probes",
    }
)
RESTRICTED_VOLUMES = frozenset(
    {"configMap", "csi", "downwardAPI", "emptyDir", "ephemeral", "persistentVolumeClaim", "projected", "secret"}
)
SELINUX_TYPES = frozenset({"", "container_t", "container_init_t", "container_kvm_t", "container_engine_t"})
SECCOMP_OK = frozenset({"RuntimeDefault", "Localhost"})

# Rule names, as the checker reports them. Baseline rules: breaking one needs a `privileged` namespace.
BASELINE_RULES = (
    "hostProcess",
    "host-namespaces",
    "privileged",
    "capabilities-baseline",
    "hostPath-volumes",
    "host-ports",
    "appArmor",
    "seLinux",
    "procMount",
    "seccomp-baseline",
    "sysctls",
)
# Restricted rules: breaking one (and no baseline rule) needs a `baseline` namespace.
RESTRICTED_RULES = (
    "volume-types",
    "allowPrivilegeEscalation",
    "runAsNonRoot",
    "runAsUser",
    "seccompProfile",
    "capabilities-restricted",
)
# The lab's rules on top: they do not change a namespace's level.
LAB_RULES = (
    "high-uid",
    "non-root-group",
    "readOnlyRootFilesystem",
    "probes",
    "probe-port",
    "serviceAccountToken",
    "secrets-as-files",
    "namespace-level",
    "api-validation",
)
RULES = BASELINE_RULES + RESTRICTED_RULES + LAB_RULES
LEVELS = ("restricted", "baseline", "privileged")  # strictest first


@dataclass(frozen=True)
class HostAccess:
    """A system pod allowed outside the restricted profile: which rules it may break, and why."""

    name: str  # the workload's name (metadata.name) as rendered here or as its chart names it
    namespace: str
    source: str  # "rendered" (ailab/platform builds it) or the Helm release that templates it
    allows: frozenset[str]  # rule names it is exempt from
    reason: str

    @property
    def level(self) -> str:
        """The Pod Security level its namespace needs."""
        if self.allows & set(BASELINE_RULES):
            return "privileged"
        return "baseline" if self.allows & set(RESTRICTED_RULES) else "restricted"


def _host(name: str, namespace: str, source: str, allows: set[str], reason: str) -> HostAccess:
    unknown = allows - set(RULES)
    if unknown:
        raise ValueError(f"HOST_ACCESS {name}: unknown rule(s) {sorted(unknown)} (allowed: {', '.join(RULES)})")
    return HostAccess(name, namespace, source, frozenset(allows), reason)


_ROOT = {"runAsNonRoot", "runAsUser", "high-uid", "non-root-group"}
_CHART = {*BASELINE_RULES, *RESTRICTED_RULES, "high-uid", "non-root-group", "readOnlyRootFilesystem"}

# The one table of exceptions. Nothing else in the stacks may run privileged, as root or with host access.
HOST_ACCESS: dict[str, HostAccess] = {
    h.name: h
    for h in (
        _host(
            "nvidia-device-plugin",
            "nvidia",
            "helm:nvidia-device-plugin",
            _CHART,
            "registers GPUs with the kubelet through its socket in /var/lib/kubelet/device-plugins (hostPath) and "
            "reads every GPU's device node (privileged); GFD/NFD label nodes from host files",
        ),
        _host(
            "nvidia-device-plugin-mps-control-daemon",
            "nvidia",
            "helm:nvidia-device-plugin",
            _CHART,
            "runs nvidia-cuda-mps-control for all GPU pods of a node: its pipe and log directories and /dev/shm are "
            "shared with them through the host (hostPath, hostIPC), and it needs every GPU device (privileged)",
        ),
        _host(
            "gpu-operator",
            "gpu-operator",
            "helm:gpu-operator",
            _CHART,
            "the GPU Operator's driver, container-toolkit, validator, MIG manager and device-plugin DaemonSets load "
            "kernel modules, write the host's containerd config and repartition GPUs (privileged, hostPath, hostPID)",
        ),
        _host(
            "dcgm-exporter",
            SYSTEM_NS,
            "rendered",
            {"capabilities-baseline", "capabilities-restricted", "hostPath-volumes", "volume-types", *_ROOT}
            # Kubernetes refuses allowPrivilegeEscalation=false together with CAP_SYS_ADMIN, so it stays unset
            | {"allowPrivilegeEscalation"},
            "DCGM's host engine needs CAP_SYS_ADMIN and root for the profiling metrics (SM occupancy, tensor "
            "activity); the kubelet's pod-resources socket (hostPath, read-only) maps GPUs to pods",
        ),
        _host(
            "node-exporter",
            SYSTEM_NS,
            "helm:kube-prometheus-stack",  # its prometheus-node-exporter subchart, moved here by namespaceOverride
            {"host-namespaces", "host-ports", "hostPath-volumes", "volume-types"},
            "reads the node's /proc, /sys and root filesystem (hostPath, read-only) in the host's network and PID "
            "namespaces, so node metrics describe the node, not its own container",
        ),
        _host(
            "log-collector",
            SYSTEM_NS,
            "rendered",
            {"hostPath-volumes", "volume-types", *_ROOT},
            "tails every container's log under /var/log/pods (hostPath, read-only); the kubelet writes those files "
            "root-owned with mode 0640, so only root can read them (all capabilities still dropped)",
        ),
        _host(
            "istio-cni-node",
            "istio-system",
            "helm:istio-cni",
            _CHART,
            "installs Istio's CNI plugin on every node (hostPath CNI directories, host network, privileged) so "
            "meshed pods need no NET_ADMIN/NET_RAW init container and the lab namespace stays restricted",
        ),
    )
}

# Pods that call the Kubernetes API keep their service-account token; every other pod turns it off.
API_CALLERS: dict[str, str] = {
    "modeldeployment-operator": "kopf watches ModelDeployments and creates/patches their Triton Deployments",
}


def namespace_level(name: str) -> str:
    """The Pod Security level a namespace enforces: restricted, unless a HOST_ACCESS pod lives there."""
    levels = [h.level for h in HOST_ACCESS.values() if h.namespace == name] or ["restricted"]
    return max(levels, key=LEVELS.index)


def namespace_reason(name: str) -> str | None:
    """Why a namespace is not restricted (the HOST_ACCESS entries that live there), None when it is."""
    hosts = [h for h in HOST_ACCESS.values() if h.namespace == name and h.level != "restricted"]
    return "; ".join(f"{h.name}: {h.reason}" for h in hosts) or None


def namespace_labels(name: str) -> dict[str, str]:
    """pod-security.kubernetes.io labels: enforce (and warn, audit) at the namespace's level, pinned version."""
    level = namespace_level(name)
    labels = {}
    for mode in ("enforce", "warn", "audit"):
        labels[f"pod-security.kubernetes.io/{mode}"] = level
        labels[f"pod-security.kubernetes.io/{mode}-version"] = PSS_VERSION
    return labels


# --- security contexts the builders use --------------------------------------------------------------------
def pod_context(uid: int = LAB_UID) -> dict[str, Any]:
    """Pod securityContext of the restricted profile: non-root UID/GID, volumes group-owned by it, seccomp."""
    return {
        "runAsNonRoot": True,
        "runAsUser": uid,
        "runAsGroup": uid,
        "fsGroup": uid,
        "seccompProfile": {"type": "RuntimeDefault"},
    }


def container_context(uid: int = LAB_UID) -> dict[str, Any]:
    """Container securityContext of the restricted profile with a read-only root filesystem."""
    return {
        "runAsNonRoot": True,
        "runAsUser": uid,
        "runAsGroup": uid,
        "allowPrivilegeEscalation": False,
        "readOnlyRootFilesystem": True,
        "capabilities": {"drop": ["ALL"]},
        "seccompProfile": {"type": "RuntimeDefault"},
    }


def restricted_pod(pod: dict[str, Any], uid: int = LAB_UID) -> dict[str, Any]:
    """`pod` with the restricted pod securityContext and, unless it calls the API, no service-account token."""
    return {**pod, "securityContext": pod_context(uid), "automountServiceAccountToken": False}


# --- the checker -------------------------------------------------------------------------------------------
POD_TEMPLATE_KINDS = ("Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "Job", "CronJob", "Pod")
LONG_RUNNING_KINDS = ("Deployment", "StatefulSet", "DaemonSet", "ReplicaSet")


@dataclass(frozen=True)
class Violation:
    """One broken rule: which object, which container (None: the pod), which rule and what was found."""

    kind: str
    namespace: str
    name: str
    container: str | None
    rule: str
    detail: str

    def __str__(self) -> str:
        where = f"{self.kind} {self.namespace}/{self.name}"
        if self.container:
            where += f" container {self.container}"
        return f"{where}: {self.rule}: {self.detail}"


def pod_spec(manifest: dict[str, Any]) -> dict[str, Any] | None:
    """The pod spec of a Pod or of a workload's pod template (CronJob: its job template's); None otherwise."""
    kind, spec = manifest.get("kind"), manifest.get("spec") or {}
    if kind == "Pod":
        return spec
    if kind == "CronJob":
        return ((spec.get("jobTemplate") or {}).get("spec") or {}).get("template", {}).get("spec")
    if kind in POD_TEMPLATE_KINDS:
        return (spec.get("template") or {}).get("spec")
    return None


def _containers(pod: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    for group in ("initContainers", "containers", "ephemeralContainers"):
        for c in pod.get(group) or []:
            yield group, c


def _probe_port(probe: dict[str, Any]) -> Any:
    for handler in ("httpGet", "tcpSocket", "grpc"):
        if handler in probe:
            return probe[handler].get("port")
    return None


def _baseline(pod: dict[str, Any], meta: dict[str, Any]) -> Iterator[tuple[str | None, str, str]]:
    psc = pod.get("securityContext") or {}
    if (psc.get("windowsOptions") or {}).get("hostProcess"):
        yield None, "hostProcess", "spec.securityContext.windowsOptions.hostProcess is true"
    for field in ("hostNetwork", "hostPID", "hostIPC"):
        if pod.get(field):
            yield None, "host-namespaces", f"spec.{field} is true"
    for v in pod.get("volumes") or []:
        if "hostPath" in v:
            yield None, "hostPath-volumes", f"volume {v.get('name')} is hostPath {v['hostPath'].get('path')}"
    for key, value in (meta.get("annotations") or {}).items():
        if key.startswith("container.apparmor.security.beta.kubernetes.io/") and not (
            value == "runtime/default" or value.startswith("localhost/")
        ):
            yield None, "appArmor", f"annotation {key}={value}"
    for sc_where, sc in [("spec.securityContext", psc)] + [
        (f"{g} {c.get('name')}", c.get("securityContext") or {}) for g, c in _containers(pod)
    ]:
        se = sc.get("seLinuxOptions") or {}
        if se.get("type", "") not in SELINUX_TYPES or se.get("user") or se.get("role"):
            yield None, "seLinux", f"{sc_where}.seLinuxOptions {se}"
        if (sc.get("seccompProfile") or {}).get("type") == "Unconfined":
            yield None, "seccomp-baseline", f"{sc_where}.seccompProfile.type is Unconfined"
        if (sc.get("appArmorProfile") or {}).get("type") == "Unconfined":
            yield None, "appArmor", f"{sc_where}.appArmorProfile.type is Unconfined"
    for s in psc.get("sysctls") or []:
        if s.get("name") not in SAFE_SYSCTLS:
            yield None, "sysctls", f"sysctl {s.get('name')} is not in the safe set"
    for _, c in _containers(pod):
        sc = c.get("securityContext") or {}
        name = c.get("name")
        if (sc.get("windowsOptions") or {}).get("hostProcess"):
            yield name, "hostProcess", "securityContext.windowsOptions.hostProcess is true"
        if sc.get("privileged"):
            yield name, "privileged", "securityContext.privileged is true"
        added = set((sc.get("capabilities") or {}).get("add") or [])
        if added - BASELINE_CAPABILITIES:
            yield name, "capabilities-baseline", f"adds {sorted(added - BASELINE_CAPABILITIES)}"
        if sc.get("procMount", "Default") != "Default":
            yield name, "procMount", f"securityContext.procMount is {sc['procMount']}"
        for p in c.get("ports") or []:
            if p.get("hostPort"):
                yield name, "host-ports", f"port {p.get('containerPort')} has hostPort {p['hostPort']}"


def _restricted(pod: dict[str, Any]) -> Iterator[tuple[str | None, str, str]]:
    psc = pod.get("securityContext") or {}
    for v in pod.get("volumes") or []:
        sources = set(v) - {"name"}
        if sources - RESTRICTED_VOLUMES:
            yield None, "volume-types", f"volume {v.get('name')} is {sorted(sources)[0]}"
    if psc.get("runAsUser") == 0:
        yield None, "runAsUser", "spec.securityContext.runAsUser is 0"
    if psc.get("runAsNonRoot") is False:
        yield None, "runAsNonRoot", "spec.securityContext.runAsNonRoot is false"
    pod_seccomp = (psc.get("seccompProfile") or {}).get("type")
    for _, c in _containers(pod):
        sc = c.get("securityContext") or {}
        name = c.get("name")
        if sc.get("allowPrivilegeEscalation") is not False:
            yield name, "allowPrivilegeEscalation", f"must be false, is {sc.get('allowPrivilegeEscalation')}"
        non_root = sc.get("runAsNonRoot", psc.get("runAsNonRoot"))
        if non_root is not True:
            yield name, "runAsNonRoot", f"must be true (container or pod), is {non_root}"
        if sc.get("runAsUser") == 0:
            yield name, "runAsUser", "securityContext.runAsUser is 0"
        seccomp = (sc.get("seccompProfile") or {}).get("type") or pod_seccomp
        if seccomp not in SECCOMP_OK:
            yield name, "seccompProfile", f"must be RuntimeDefault or Localhost (container or pod), is {seccomp}"
        caps = sc.get("capabilities") or {}
        if "ALL" not in (caps.get("drop") or []):
            yield name, "capabilities-restricted", f"must drop ALL, drops {caps.get('drop')}"
        extra = set(caps.get("add") or []) - RESTRICTED_CAPABILITIES
        if extra:
            yield name, "capabilities-restricted", f"may add only NET_BIND_SERVICE, adds {sorted(extra)}"


def _lab(manifest: dict[str, Any], pod: dict[str, Any]) -> Iterator[tuple[str | None, str, str]]:
    psc = pod.get("securityContext") or {}
    name = manifest["metadata"]["name"]
    for field in ("runAsGroup", "fsGroup"):
        if psc.get(field) == 0:
            yield None, "non-root-group", f"spec.securityContext.{field} is 0"
    if 0 in (psc.get("supplementalGroups") or []):
        yield None, "non-root-group", "spec.securityContext.supplementalGroups has 0"
    calls_api = name in API_CALLERS
    token = pod.get("automountServiceAccountToken")
    if not calls_api and token is not False:
        yield None, "serviceAccountToken", f"automountServiceAccountToken must be false (not an API caller), is {token}"
    if calls_api and token is not True:
        yield None, "serviceAccountToken", f"an API caller ({API_CALLERS[name]}) sets it true explicitly, is {token}"
    long_running = manifest["kind"] in LONG_RUNNING_KINDS
    for group, c in _containers(pod):
        sc = c.get("securityContext") or {}
        cname = c.get("name")
        uid = sc.get("runAsUser", psc.get("runAsUser"))
        if not isinstance(uid, int) or uid < MIN_UID:
            yield cname, "high-uid", f"runAsUser (container or pod) must be >= {MIN_UID}, is {uid}"
        if sc.get("runAsGroup", psc.get("runAsGroup")) == 0:
            yield cname, "non-root-group", "runAsGroup is 0"
        added = set((sc.get("capabilities") or {}).get("add") or [])
        if sc.get("allowPrivilegeEscalation") is False and (
            sc.get("privileged") or added & {"SYS_ADMIN", "CAP_SYS_ADMIN"}
        ):
            # the API server refuses this combination: the pod would never be created
            yield cname, "api-validation", "allowPrivilegeEscalation false with privileged or SYS_ADMIN"
        if sc.get("readOnlyRootFilesystem") is not True:
            yield cname, "readOnlyRootFilesystem", f"must be true, is {sc.get('readOnlyRootFilesystem')}"
        for env in c.get("env") or []:
            if "secretKeyRef" in (env.get("valueFrom") or {}):
                yield cname, "secrets-as-files", f"env {env.get('name')} comes from a Secret; mount it as a file"
        for src in c.get("envFrom") or []:
            if "secretRef" in src:
                yield cname, "secrets-as-files", f"envFrom Secret {src['secretRef'].get('name')}; mount it as a file"
        if long_running and group == "containers":
            for probe in ("livenessProbe", "readinessProbe"):
                if probe not in c:
                    yield cname, "probes", f"a long-running container needs a {probe}"
        ports = {p.get("name") for p in c.get("ports") or []} | {p.get("containerPort") for p in c.get("ports") or []}
        for probe in ("startupProbe", "livenessProbe", "readinessProbe"):
            port = _probe_port(c.get(probe) or {})
            if port is not None and port not in ports:
                yield cname, "probe-port", f"{probe} targets port {port!r}, which the container does not declare"


def check_pod(manifest: dict[str, Any], namespace_levels: dict[str, str] | None = None) -> list[Violation]:
    """Every rule `manifest`'s pod (template) breaks, less what its HOST_ACCESS entry allows; [] for non-pods.

    With `namespace_levels` (namespace -> enforced level), also that the namespace's label admits the pod."""
    pod = pod_spec(manifest)
    if pod is None:
        return []
    meta = manifest["metadata"]
    ns, name, kind = meta.get("namespace", "default"), meta["name"], manifest["kind"]
    template_meta = meta if kind == "Pod" else (manifest["spec"].get("template") or {}).get("metadata") or {}
    host = HOST_ACCESS.get(name)
    allowed = host.allows if host and host.namespace == ns else frozenset()
    found = [*_baseline(pod, template_meta), *_restricted(pod), *_lab(manifest, pod)]
    out = [Violation(kind, ns, name, c, rule, detail) for c, rule, detail in found if rule not in allowed]
    if namespace_levels is not None:
        need = host.level if host and host.namespace == ns else "restricted"
        have = namespace_levels.get(ns)
        if have not in LEVELS or LEVELS.index(have) < LEVELS.index(need):  # LEVELS: strictest first
            out.append(
                Violation(kind, ns, name, None, "namespace-level", f"namespace enforces {have!r}; the pod needs {need}")
            )
        elif host is None and have != "restricted":
            out.append(Violation(kind, ns, name, None, "namespace-level", f"namespace enforces {have}, not restricted"))
    return out


def enforced_levels(manifests: list[dict[str, Any]]) -> dict[str, str]:
    """namespace -> its pod-security.kubernetes.io/enforce label, from the Namespace manifests."""
    return {
        m["metadata"]["name"]: (m["metadata"].get("labels") or {}).get("pod-security.kubernetes.io/enforce", "")
        for m in manifests
        if m.get("kind") == "Namespace"
    }
