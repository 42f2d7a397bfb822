"""Typed, validated settings of one week stack, parsed before any resource exists.

A week's settings are its facts (ailab/contract/facts/weeks.yaml) with the stack file's (`Pulumi.weekNN.yaml`)
target and site overrides on top (ailab/platform/weeks.py merges them). Keys are the stack file's
(`ailab:gpu.sharing.mps.replicas`); a bad value raises `ConfigError` naming the file, the key, the value and
what is allowed. Components are off unless the week turns them on.
"""

from __future__ import annotations

import re
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator
from pydantic.alias_generators import to_camel

from ailab.contract import facts

WEEKS = range(1, 14)
NAMESPACE = "ailab"

# MIG profiles per GPU model, with compute/memory slices: the one table, ailab/contract/facts/mig_profiles.yaml.
MIG_TABLE = facts.mig_profiles()
MIG_PROFILES = frozenset(MIG_TABLE.names())


class ConfigError(ValueError):
    """A stack setting is invalid; the message names the stack file, the key, the value and what is allowed."""


class _M(BaseModel):
    model_config = ConfigDict(extra="forbid", alias_generator=to_camel, populate_by_name=True, frozen=True)


class ClusterSettings(_M):
    target: Literal["kind", "k3s", "existing"] = "kind"
    name: str = Field("ailab", pattern=r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
    gpu: bool = True  # whether the nodes expose NVIDIA GPUs (kind: passed through like nvkind does)
    workers: int = Field(1, ge=1, le=8)  # kind worker nodes, each getting all GPUs
    kubeconfig: str | None = None  # k3s: fetched by the k3s role; existing: the user's file
    context: str | None = None
    inventory: str = "inventories/lab.example/hosts.yml"  # k3s: the Ansible inventory of the GPU hosts


class SharedResource(_M):
    name: str = "nvidia.com/gpu"
    replicas: int = Field(ge=1)


class SharingMethod(_M):
    """One of the device plugin's sharing methods (time-slicing or MPS) as its config file spells it."""

    replicas: int | None = Field(None, ge=1)  # shorthand for resources: [{name: nvidia.com/gpu, replicas}]
    resources: tuple[SharedResource, ...] = ()
    rename_by_default: bool = False
    fail_requests_greater_than_one: bool = False

    @model_validator(mode="after")
    def _one_form(self) -> SharingMethod:
        if self.replicas is None and not self.resources:
            raise ValueError("set replicas (>= 1) or resources [{name, replicas}]")
        return self

    def shared(self) -> tuple[SharedResource, ...]:
        return self.resources or (SharedResource(replicas=self.replicas or 1),)


class Sharing(_M):
    time_slicing: SharingMethod | None = None
    mps: SharingMethod | None = None

    @model_validator(mode="after")
    def _exclusive(self) -> Sharing:
        if self.time_slicing and self.mps:
            raise ValueError("timeSlicing and mps are both on: the device plugin allows one sharing method")
        return self


class DeviceConfig(_M):
    """One device-plugin config file: MIG strategy and sharing."""

    mig_strategy: Literal["none", "single", "mixed"] = "none"
    sharing: Sharing | None = None

    @model_validator(mode="after")
    def _mps_not_on_mig(self) -> DeviceConfig:
        if self.sharing and self.sharing.mps and self.mig_strategy != "none":
            raise ValueError(
                f"mps on MIG devices (migStrategy {self.mig_strategy}) is not supported: use migStrategy none"
            )
        return self

    def gpu_resource(self) -> str:
        """The extended resource a pod asks for one GPU (share) by: with renameByDefault the device plugin advertises
        shared GPUs as `<name>.shared` (nvidia.com/gpu.shared), and a request for the plain name stays Pending."""
        method = self.sharing and (self.sharing.time_slicing or self.sharing.mps)
        return "nvidia.com/gpu.shared" if method and method.rename_by_default else "nvidia.com/gpu"


class NodeDeviceConfig(DeviceConfig):
    nodes: tuple[str, ...] = ()  # labelled nvidia.com/device-plugin.config=<this config's name>


class MigSettings(_M):
    """MIG layouts for the GPU Operator's MIG manager: named layouts and which node gets which."""

    layouts: dict[str, dict[str, int]] = {}  # layout name -> {profile: count per GPU}
    nodes: dict[str, str] = {}  # node -> layout, applied as the nvidia.com/mig.config label

    @field_validator("layouts")
    @classmethod
    def _profiles(cls, v: dict[str, dict[str, int]]) -> dict[str, dict[str, int]]:
        for layout, profiles in v.items():
            for profile, count in profiles.items():
                if profile not in MIG_PROFILES:
                    raise ValueError(
                        f"{layout}: unknown MIG profile {profile!r} (allowed: {', '.join(MIG_TABLE.names())})"
                    )
                if count < 1 or count > 7:
                    raise ValueError(f"{layout}.{profile}: count {count} must be 1..7")
            if not MIG_TABLE.gpus_fitting(profiles):
                holders = {p: [g for g, gpu in MIG_TABLE.gpus.items() if p in gpu.profiles] for p in profiles}
                raise ValueError(
                    f"{layout}: {profiles} fits no single GPU of the MIG table (profiles by GPU: {holders}; "
                    "one GPU has 7 compute and 8 memory slices, ailab/contract/facts/mig_profiles.yaml)"
                )
        return v

    @model_validator(mode="after")
    def _known_layouts(self) -> MigSettings:
        for node, layout in self.nodes.items():
            if layout not in self.layouts and layout != "all-disabled":
                raise ValueError(f"nodes.{node}: unknown layout {layout!r} (allowed: {', '.join(self.layouts)})")
        return self


class GpuSettings(DeviceConfig):
    enabled: bool = False
    mode: Literal["device-plugin", "operator"] = "device-plugin"
    gfd: bool = True  # GPU Feature Discovery (+ NFD): nvidia.com/gpu.product etc. node labels
    node_configs: dict[str, NodeDeviceConfig] = {}
    mig: MigSettings | None = None
    smoke_test: bool = True

    @model_validator(mode="after")
    def _mig_needs_operator(self) -> GpuSettings:
        if self.mig and self.mode != "operator":
            raise ValueError("mig layouts are applied by the GPU Operator's MIG manager: set mode operator")
        return self


class Hpa(_M):
    enabled: bool = False
    min_replicas: int = Field(1, ge=1)
    max_replicas: int = Field(4, ge=1)
    cpu_utilization: int = Field(70, ge=1, le=100)  # percent of the CPU request
    queue_time_us: int | None = Field(None, ge=1)  # target avg queue time per request, via prometheus-adapter


class Keda(_M):
    enabled: bool = False
    min_replicas: int = Field(1, ge=0)
    max_replicas: int = Field(4, ge=1)
    threshold: float = Field(50.0, gt=0)  # inferences/s per replica


class ServingSettings(_M):
    enabled: bool = False
    replicas: int = Field(1, ge=1)
    gpu: bool = True  # request nvidia.com/gpu: 1 per replica
    models: tuple[str, ...] | None = None  # default: the week's models (ailab/contract/facts/weeks.yaml)
    explicit_model_control: bool = False
    canary: bool = False  # a second Deployment (version: canary) for weighted routing
    hpa: Hpa = Hpa()
    keda: Keda = Keda()

    @model_validator(mode="after")
    def _one_autoscaler(self) -> ServingSettings:
        if self.hpa.enabled and self.keda.enabled:
            raise ValueError("hpa and keda both scale the same Deployment: enable one")
        return self


class MonitoringSettings(_M):
    enabled: bool = False
    dcgm: bool = True
    dashboards: bool = True  # dashboards/grafana/*.json as Grafana sidecar ConfigMaps
    rules: bool = True  # dashboards/prometheus/rules/*.yaml as PrometheusRules
    federation: bool = False
    thanos: bool = False
    retention: str = Field("7d", pattern=r"^\d+[hdw]$")


class CacheSettings(_M):
    enabled: bool = False
    storage: str = Field("1Gi", pattern=r"^\d+(Mi|Gi)$")
    max_memory: str = Field("256mb", pattern=r"^\d+(mb|gb)$")


class Mirror(_M):
    enabled: bool = False
    percent: float = Field(100.0, gt=0, le=100)


class CircuitBreaker(_M):
    max_pending_requests: int = Field(64, ge=1)
    max_requests_per_connection: int = Field(16, ge=1)
    consecutive_5xx_errors: int = Field(5, ge=1, alias="consecutive5xxErrors")
    interval: str = Field("10s", pattern=r"^\d+(ms|s|m)$")
    base_ejection_time: str = Field("30s", pattern=r"^\d+(ms|s|m)$")
    max_ejection_percent: int = Field(50, ge=1, le=100)


class RateLimit(_M):
    max_tokens: int = Field(100, ge=1)
    tokens_per_fill: int = Field(100, ge=1)
    fill_interval: str = Field("1s", pattern=r"^\d+(ms|s|m)$")


class MeshSettings(_M):
    enabled: bool = False
    weights: dict[Literal["stable", "canary"], int] = {"stable": 100}
    mirror: Mirror = Mirror()
    circuit_breaker: CircuitBreaker | None = None
    rate_limit: RateLimit | None = None

    @field_validator("weights")
    @classmethod
    def _sum_100(cls, v: dict[str, int]) -> dict[str, int]:
        if any(w < 0 for w in v.values()) or sum(v.values()) != 100:
            raise ValueError(f"weights {v} must be >= 0 and sum to 100 (e.g. stable: 90, canary: 10)")
        return v


class DeliverySettings(_M):
    enabled: bool = False
    repo_url: str = "https://example.invalid/ai-infra-lab.git"  # the user's fork; the lab's own remote
    revision: str = "main"


class ObjectsSettings(_M):
    log_collector: bool = False  # DaemonSet
    operator: bool = False  # ModelDeployment CRD + kopf controller


class AutoscalerSettings(_M):
    enabled: bool = False
    cloud_provider: Literal["aws", "gce", "azure"] = "aws"
    cluster_name: str = "ailab"
    region: str = "us-east-1"


class KubeletSettings(_M):
    """Topology/CPU manager settings for k3s agents (passed as kubelet-arg by the k3s role)."""

    topology_manager_policy: Literal["none", "best-effort", "restricted", "single-numa-node"] = "none"
    cpu_manager_policy: Literal["none", "static"] = "none"
    reserved_cpus: str | None = Field(None, pattern=r"^\d+(-\d+)?(,\d+(-\d+)?)*$")


class SecuritySettings(_M):
    enabled: bool = False
    jwt_issuer: str = "https://auth.ailab.local"
    jwks_uri: str = "https://auth.ailab.local/.well-known/jwks.json"
    network_policies: bool = True
    gateway_host: str = "triton.ailab.local"


class TracingSettings(_M):
    enabled: bool = False
    sampling_percent: float = Field(10.0, gt=0, le=100)


class StackSettings(_M):
    week: int
    cluster: ClusterSettings = ClusterSettings()
    gpu: GpuSettings = GpuSettings()
    serving: ServingSettings = ServingSettings()
    monitoring: MonitoringSettings = MonitoringSettings()
    cache: CacheSettings = CacheSettings()
    mesh: MeshSettings = MeshSettings()
    delivery: DeliverySettings = DeliverySettings()
    objects: ObjectsSettings = ObjectsSettings()
    autoscaler: AutoscalerSettings = AutoscalerSettings()
    kubelet: KubeletSettings = KubeletSettings()
    security: SecuritySettings = SecuritySettings()
    tracing: TracingSettings = TracingSettings()

    @field_validator("week")
    @classmethod
    def _week(cls, v: int) -> int:
        if v not in WEEKS:
            raise ValueError(f"unknown week {v} (allowed: 1-13)")
        return v

    @model_validator(mode="after")
    def _cross(self) -> StackSettings:
        if self.mesh.enabled and "canary" in self.mesh.weights and not self.serving.canary:
            raise ValueError("mesh.weights routes to canary: set serving.canary true")
        if (self.serving.hpa.queue_time_us or self.serving.keda.enabled) and not self.monitoring.enabled:
            raise ValueError("serving.hpa.queueTimeUs and serving.keda read Prometheus: enable monitoring")
        if self.serving.enabled and self.serving.gpu and not self.gpu.enabled:
            raise ValueError("serving.gpu requests nvidia.com/gpu: enable gpu")
        return self


SECTIONS = tuple(n for n in StackSettings.model_fields if n != "week")
# Sections a week turns on by listing them (their `enabled` follows); the others only carry settings.
SWITCHED = tuple(n for n in SECTIONS if "enabled" in StackSettings.model_fields[n].annotation.model_fields)


def parse_settings(config: dict[str, Any], source: str, prefix: str = "ailab:") -> StackSettings:
    """Stack config (`{"ailab:gpu": {...}, ...}` as in the stack file) -> settings, or ConfigError naming the key.

    `prefix` is how errors spell a key's path in `source` (`weeks.7.cluster.` for the week facts)."""
    data: dict[str, Any] = {}
    for key, value in config.items():
        ns, _, name = key.partition(":")
        if ns != "ailab":
            continue  # other namespaces (kubernetes:context, ...) belong to providers
        if name != "week" and name not in SECTIONS:
            raise ConfigError(
                f"{source}: ailab:{name}: unknown key (allowed: ailab:week, ailab:{', ailab:'.join(SECTIONS)})"
            )
        data[name] = value
    try:
        return StackSettings.model_validate(data)
    except ValidationError as exc:
        lines = []
        for e in exc.errors():
            loc = [str(p) for p in e["loc"]]
            key = prefix + ".".join(loc) if loc else prefix.rstrip(".")
            msg = re.sub(r"^Value error, ", "", e["msg"])
            value = e.get("input")
            shown = "" if e["type"] == "missing" or isinstance(value, dict) else f" = {value!r}"
            lines.append(f"{source}: {key}{shown}: {msg}")
        raise ConfigError("\n".join(lines)) from None
