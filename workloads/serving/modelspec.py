"""Typed spec of a Triton model, validated, and turned into Triton's own `ModelConfig` protobuf (never a template)."""

from __future__ import annotations

from dataclasses import dataclass, field

from tritonclient.grpc import model_config_pb2 as mc

DATA_TYPES = [t for t in mc.DataType.keys() if t != "TYPE_INVALID"]  # noqa: SIM118 - protobuf enum wrapper
KINDS = ("KIND_CPU", "KIND_GPU")
RUNTIMES = ("onnxruntime", "torch")
TIMEOUT_ACTIONS = ("REJECT", "DELAY")


class SpecError(ValueError):
    """A model spec that Triton would reject or that cannot run here; names the model and the field."""


@dataclass(frozen=True)
class TensorSpec:
    name: str
    data_type: str  # "TYPE_FP32" (or "FP32")
    dims: tuple[int, ...]  # without the batch axis when max_batch_size > 0; -1 = variable


@dataclass(frozen=True)
class RateLimiter:
    resources: dict[str, int] = field(default_factory=dict)  # resource name -> count an execution needs
    priority: int = 1


@dataclass(frozen=True)
class InstanceGroup:
    count: int = 1
    kind: str = "KIND_CPU"
    gpus: tuple[int, ...] = ()
    rate_limiter: RateLimiter | None = None


@dataclass(frozen=True)
class QueuePolicy:
    timeout_action: str = "REJECT"
    default_timeout_us: int = 0
    allow_timeout_override: bool = False
    max_queue_size: int = 0  # 0 = unbounded


@dataclass(frozen=True)
class DynamicBatching:
    preferred_batch_sizes: tuple[int, ...] = ()
    max_queue_delay_us: int = 0
    priority_levels: int = 0
    default_priority_level: int = 0
    queue_policy: QueuePolicy | None = None


@dataclass(frozen=True)
class VersionPolicy:
    kind: str = "latest"  # latest | all | specific
    num_versions: int = 1  # for latest
    versions: tuple[int, ...] = ()  # for specific


@dataclass(frozen=True)
class ModelSpec:
    """One model of a repository; `source` names the network (see repository.SOURCES) that every version serves."""

    name: str
    inputs: tuple[TensorSpec, ...]
    outputs: tuple[TensorSpec, ...]
    source: str = "mlp"
    runtime: str = "onnxruntime"
    max_batch_size: int = 64
    versions: tuple[int, ...] = (1,)
    version_policy: VersionPolicy = VersionPolicy()
    instance_groups: tuple[InstanceGroup, ...] = (InstanceGroup(),)
    dynamic_batching: DynamicBatching | None = None
    response_cache: bool = False
    parameters: dict[str, str] = field(default_factory=dict)


def _dtype(t: str) -> str:
    return t if t.startswith("TYPE_") else f"TYPE_{t}"


def validate(spec: ModelSpec, full_shapes: dict[str, tuple[int, ...]] | None = None, n_gpus: int = 0) -> None:
    """Raise SpecError naming model and field for anything Triton or this host would reject.

    full_shapes: the source network's tensor shapes including the batch axis (-1 = dynamic), to check dims.
    """
    m = f"model {spec.name!r}"
    if not spec.name or "/" in spec.name:
        raise SpecError(f"{m}: name must be a non-empty directory name")
    if spec.runtime not in RUNTIMES:
        raise SpecError(f"{m}: runtime {spec.runtime!r}: allowed {', '.join(RUNTIMES)}")
    if spec.max_batch_size < 0:
        raise SpecError(f"{m}: max_batch_size {spec.max_batch_size}: must be >= 0 (0 = no batching)")
    for kind, tensors in (("inputs", spec.inputs), ("outputs", spec.outputs)):
        if not tensors:
            raise SpecError(f"{m}: {kind}: at least one tensor is required")
        for t in tensors:
            if _dtype(t.data_type) not in DATA_TYPES:
                raise SpecError(f"{m}: {kind} {t.name!r} data_type {t.data_type!r}: allowed {', '.join(DATA_TYPES)}")
            if not t.dims or any(d == 0 or d < -1 for d in t.dims):
                raise SpecError(f"{m}: {kind} {t.name!r} dims {list(t.dims)}: each must be > 0 or -1")
            if full_shapes and t.name in full_shapes:
                want = full_shapes[t.name]
                got = (-1, *t.dims) if spec.max_batch_size > 0 else tuple(t.dims)
                if len(got) != len(want) or any(w != -1 and g not in (w, -1) for g, w in zip(got, want, strict=False)):
                    raise SpecError(
                        f"{m}: {kind} {t.name!r} dims {list(t.dims)} with max_batch_size {spec.max_batch_size} do not "
                        f"match the network's shape {list(want)} (dims exclude the batch axis when max_batch_size > 0)"
                    )
            elif full_shapes is not None:
                raise SpecError(f"{m}: {kind} {t.name!r}: the network has no such tensor (has {sorted(full_shapes)})")
    if not spec.versions or any(v < 1 for v in spec.versions):
        raise SpecError(f"{m}: versions {list(spec.versions)}: need one or more integers >= 1")
    vp = spec.version_policy
    if vp.kind not in ("latest", "all", "specific"):
        raise SpecError(f"{m}: version_policy.kind {vp.kind!r}: allowed latest, all, specific")
    if vp.kind == "latest" and vp.num_versions < 1:
        raise SpecError(f"{m}: version_policy.num_versions {vp.num_versions}: must be >= 1")
    if vp.kind == "specific" and (not vp.versions or not set(vp.versions) <= set(spec.versions)):
        raise SpecError(
            f"{m}: version_policy.versions {list(vp.versions)}: must be among versions {list(spec.versions)}"
        )
    if not spec.instance_groups:
        raise SpecError(f"{m}: instance_groups: at least one group is required")
    for i, g in enumerate(spec.instance_groups):
        if g.kind not in KINDS:
            raise SpecError(f"{m}: instance_groups[{i}].kind {g.kind!r}: allowed {', '.join(KINDS)}")
        if g.count < 1:
            raise SpecError(f"{m}: instance_groups[{i}].count {g.count}: must be >= 1")
        if g.kind == "KIND_GPU" and n_gpus == 0:
            raise SpecError(f"{m}: instance_groups[{i}].kind KIND_GPU: this host has no GPU (use KIND_CPU)")
        if g.kind == "KIND_GPU" and spec.runtime != "torch":
            raise SpecError(
                f"{m}: instance_groups[{i}].kind KIND_GPU needs runtime 'torch' (onnxruntime here is CPU-only)"
            )
        bad = [x for x in g.gpus if not 0 <= x < n_gpus]
        if bad:
            raise SpecError(f"{m}: instance_groups[{i}].gpus {list(g.gpus)}: allowed 0..{n_gpus - 1} on this host")
    db = spec.dynamic_batching
    if db is not None:
        if spec.max_batch_size == 0:
            raise SpecError(f"{m}: dynamic_batching needs max_batch_size > 0 (it is 0)")
        for p in db.preferred_batch_sizes:
            if not 1 <= p <= spec.max_batch_size:
                raise SpecError(
                    f"{m}: dynamic_batching.preferred_batch_sizes {p}: "
                    f"allowed 1..max_batch_size ({spec.max_batch_size})"
                )
        if db.max_queue_delay_us < 0:
            raise SpecError(f"{m}: dynamic_batching.max_queue_delay_us {db.max_queue_delay_us}: must be >= 0")
        if db.priority_levels < 0 or not 0 <= db.default_priority_level <= db.priority_levels:
            raise SpecError(
                f"{m}: dynamic_batching.default_priority_level {db.default_priority_level}: "
                f"allowed 0..priority_levels ({db.priority_levels})"
            )
        if db.queue_policy and db.queue_policy.timeout_action not in TIMEOUT_ACTIONS:
            raise SpecError(
                f"{m}: dynamic_batching.queue_policy.timeout_action {db.queue_policy.timeout_action!r}: "
                f"allowed {', '.join(TIMEOUT_ACTIONS)}"
            )


def to_config(spec: ModelSpec) -> mc.ModelConfig:
    """The spec as Triton's ModelConfig message (python backend; the runtime goes into `parameters`)."""
    cfg = mc.ModelConfig(name=spec.name, backend="python", max_batch_size=spec.max_batch_size)
    vp = spec.version_policy
    if vp.kind == "latest":
        cfg.version_policy.latest.num_versions = vp.num_versions
    elif vp.kind == "all":
        cfg.version_policy.all.SetInParent()
    else:
        cfg.version_policy.specific.versions.extend(vp.versions)
    for t in spec.inputs:
        cfg.input.add(name=t.name, data_type=mc.DataType.Value(_dtype(t.data_type)), dims=list(t.dims))
    for t in spec.outputs:
        cfg.output.add(name=t.name, data_type=mc.DataType.Value(_dtype(t.data_type)), dims=list(t.dims))
    for g in spec.instance_groups:
        ig = cfg.instance_group.add(count=g.count, kind=mc.ModelInstanceGroup.Kind.Value(g.kind), gpus=list(g.gpus))
        if g.rate_limiter:
            ig.rate_limiter.priority = g.rate_limiter.priority
            for name, count in g.rate_limiter.resources.items():
                ig.rate_limiter.resources.add(name=name, count=count)
    if spec.dynamic_batching is not None:
        db = spec.dynamic_batching
        cfg.dynamic_batching.SetInParent()  # present even with all defaults: "dynamic_batching { }" turns it on
        cfg.dynamic_batching.preferred_batch_size.extend(db.preferred_batch_sizes)
        cfg.dynamic_batching.max_queue_delay_microseconds = db.max_queue_delay_us
        cfg.dynamic_batching.priority_levels = db.priority_levels
        cfg.dynamic_batching.default_priority_level = db.default_priority_level
        if db.queue_policy:
            q = db.queue_policy
            p = cfg.dynamic_batching.default_queue_policy
            p.timeout_action = mc.ModelQueuePolicy.TimeoutAction.Value(q.timeout_action)
            p.default_timeout_microseconds = q.default_timeout_us
            p.allow_timeout_override = q.allow_timeout_override
            p.max_queue_size = q.max_queue_size
    if spec.response_cache:
        cfg.response_cache.enable = True
    params = {"runtime": spec.runtime, "intra_op_threads": "1", **spec.parameters}
    for k, v in params.items():
        cfg.parameters[k].string_value = str(v)
    return cfg
