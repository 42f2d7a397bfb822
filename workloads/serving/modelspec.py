"""Typed spec of a Triton model, validated, and turned into Triton's own `ModelConfig` protobuf (never a template)."""

from __future__ import annotations

from collections.abc import Sequence
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
    """What one execution of an instance needs from the server's rate limiter (`--rate-limit=execution_count`).

    resources: name -> count an execution holds while it runs; names in `global_resources` are shared by every
    device (`global: true`), the others are per device. priority: weight among instances competing for the same
    resources (2 gets half the scheduling chances of 1; 0 is treated as 1 by Triton).
    """

    resources: dict[str, int] = field(default_factory=dict)
    priority: int = 1
    global_resources: tuple[str, ...] = ()


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
    """priority_levels > 0 turns on priority queues: level 1 is served first; requests without a priority get
    default_priority_level (1..priority_levels); priority_queue_policy overrides queue_policy per level."""

    preferred_batch_sizes: tuple[int, ...] = ()
    max_queue_delay_us: int = 0
    priority_levels: int = 0
    default_priority_level: int = 0
    queue_policy: QueuePolicy | None = None
    priority_queue_policy: dict[int, QueuePolicy] = field(default_factory=dict)


@dataclass(frozen=True)
class EnsembleStep:
    """One step of Triton's ensemble scheduler: run `model`, feeding its inputs from ensemble tensors.

    input_map: the model's input name -> ensemble tensor name; output_map: the model's output name -> ensemble
    tensor name (an ensemble output, or an intermediate tensor a later step reads). model_version -1 = latest.
    """

    model: str
    input_map: dict[str, str]
    output_map: dict[str, str]
    model_version: int = -1


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
    # Non-empty: the model is an ensemble (platform "ensemble"); source, runtime, instance_groups are not used.
    ensemble: tuple[EnsembleStep, ...] = ()


def _dtype(t: str) -> str:
    return t if t.startswith("TYPE_") else f"TYPE_{t}"


def validate(spec: ModelSpec, full_shapes: dict[str, tuple[int, ...]] | None = None, n_gpus: int = 0) -> None:
    """Raise SpecError naming model and field for anything Triton or this host would reject.

    full_shapes: the source network's tensor shapes including the batch axis (-1 = dynamic), to check dims.
    """
    m = f"model {spec.name!r}"
    if not spec.name or "/" in spec.name:
        raise SpecError(f"{m}: name must be a non-empty directory name")
    if spec.ensemble:
        _validate_ensemble_own(spec)
        return
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
        if g.rate_limiter is not None:
            _validate_rate_limiter(m, i, g.rate_limiter)
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
        _validate_priorities(m, db)


def _validate_priorities(m: str, db: DynamicBatching) -> None:
    if db.priority_levels < 0:
        raise SpecError(f"{m}: dynamic_batching.priority_levels {db.priority_levels}: must be >= 0 (0 = off)")
    if db.priority_levels == 0 and db.default_priority_level != 0:
        raise SpecError(
            f"{m}: dynamic_batching.default_priority_level {db.default_priority_level}: must be 0 when "
            "priority_levels is 0 (priorities off)"
        )
    if db.priority_levels > 0 and not 1 <= db.default_priority_level <= db.priority_levels:
        raise SpecError(
            f"{m}: dynamic_batching.default_priority_level {db.default_priority_level}: "
            f"allowed 1..priority_levels ({db.priority_levels})"
        )
    bad = [lvl for lvl in db.priority_queue_policy if not 1 <= lvl <= db.priority_levels]
    if bad:
        raise SpecError(
            f"{m}: dynamic_batching.priority_queue_policy level {bad[0]}: allowed 1..priority_levels "
            f"({db.priority_levels})"
        )
    policies = [("queue_policy", db.queue_policy)]
    policies += [(f"priority_queue_policy[{k}]", q) for k, q in sorted(db.priority_queue_policy.items())]
    for where, q in policies:
        if q is None:
            continue
        if q.timeout_action not in TIMEOUT_ACTIONS:
            raise SpecError(
                f"{m}: dynamic_batching.{where}.timeout_action {q.timeout_action!r}: "
                f"allowed {', '.join(TIMEOUT_ACTIONS)}"
            )
        for fname in ("default_timeout_us", "max_queue_size"):
            if getattr(q, fname) < 0:
                raise SpecError(f"{m}: dynamic_batching.{where}.{fname} {getattr(q, fname)}: must be >= 0")


def _validate_rate_limiter(m: str, i: int, rl: RateLimiter) -> None:
    where = f"{m}: instance_groups[{i}].rate_limiter"
    if rl.priority < 0:
        raise SpecError(f"{where}.priority {rl.priority}: must be >= 0 (0 is treated as 1)")
    for name, count in rl.resources.items():
        if not name or not name.strip():
            raise SpecError(f"{where}.resources: a resource name is empty")
        if isinstance(count, bool) or not isinstance(count, int) or count < 0:
            raise SpecError(f"{where}.resources[{name!r}].count {count!r}: must be an integer >= 0")
    unknown = [r for r in rl.global_resources if r not in rl.resources]
    if unknown:
        raise SpecError(f"{where}.global_resources {unknown}: not among resources {sorted(rl.resources)}")


def _check_tensors(m: str, spec: ModelSpec) -> None:
    for kind, tensors in (("inputs", spec.inputs), ("outputs", spec.outputs)):
        if not tensors:
            raise SpecError(f"{m}: {kind}: at least one tensor is required")
        names = [t.name for t in tensors]
        if len(set(names)) != len(names):
            raise SpecError(f"{m}: {kind} {names}: names must be unique")
        for t in tensors:
            if _dtype(t.data_type) not in DATA_TYPES:
                raise SpecError(f"{m}: {kind} {t.name!r} data_type {t.data_type!r}: allowed {', '.join(DATA_TYPES)}")
            if not t.dims or any(d == 0 or d < -1 for d in t.dims):
                raise SpecError(f"{m}: {kind} {t.name!r} dims {list(t.dims)}: each must be > 0 or -1")


def _validate_ensemble_own(spec: ModelSpec) -> None:
    """What an ensemble spec can get wrong on its own (the steps' models are checked by validate_ensembles)."""
    m = f"model {spec.name!r}"
    if spec.max_batch_size < 0:
        raise SpecError(f"{m}: max_batch_size {spec.max_batch_size}: must be >= 0 (0 = no batching)")
    _check_tensors(m, spec)
    if spec.dynamic_batching is not None:
        raise SpecError(
            f"{m}: dynamic_batching: an ensemble is scheduled by ensemble_scheduling (batch in its steps' models)"
        )
    if not spec.versions or any(v < 1 for v in spec.versions):
        raise SpecError(f"{m}: versions {list(spec.versions)}: need one or more integers >= 1")
    for i, st in enumerate(spec.ensemble):
        where = f"{m}: ensemble_scheduling.step[{i}]"
        if not st.model:
            raise SpecError(f"{where}.model_name: empty")
        if st.model_version < -1 or st.model_version == 0:
            raise SpecError(f"{where}.model_version {st.model_version}: -1 (latest) or a version >= 1")
        if not st.input_map:
            raise SpecError(f"{where}.input_map: a step needs at least one input")
        if not st.output_map:
            raise SpecError(f"{where}.output_map: a step needs at least one output")


def _full(spec: ModelSpec, t: TensorSpec) -> tuple[int, ...]:
    return (-1, *t.dims) if spec.max_batch_size > 0 else tuple(t.dims)


def _shapes_agree(a: tuple[int, ...], b: tuple[int, ...]) -> bool:
    return len(a) == len(b) and all(x == y or -1 in (x, y) for x, y in zip(a, b, strict=True))


def validate_ensembles(specs: Sequence[ModelSpec]) -> None:
    """Check every ensemble of a repository against the models its steps name, as Triton does when it loads it:
    known models, existing tensor names, every tensor produced once and consumed with the same data type and a
    compatible shape, no cycle, every ensemble input used and every output produced. Raises SpecError."""
    by_name = {s.name: s for s in specs}
    for ens in (s for s in specs if s.ensemble):
        m = f"model {ens.name!r}"
        # ensemble tensor -> (data type, full shape, who produces it)
        made: dict[str, tuple[str, tuple[int, ...], str]] = {
            t.name: (_dtype(t.data_type), _full(ens, t), f"ensemble input {t.name!r}") for t in ens.inputs
        }
        models: list[ModelSpec] = []
        for i, st in enumerate(ens.ensemble):
            where = f"{m}: ensemble_scheduling.step[{i}]"
            sub = by_name.get(st.model)
            if sub is None or sub.name == ens.name:
                known = sorted(n for n in by_name if n != ens.name)
                raise SpecError(f"{where}.model_name {st.model!r}: no such model in the repository (has {known})")
            if st.model_version > 0 and st.model_version not in sub.versions:
                raise SpecError(
                    f"{where}.model_version {st.model_version}: model {sub.name!r} has versions {list(sub.versions)}"
                )
            if ens.max_batch_size > 0 and sub.max_batch_size < ens.max_batch_size:
                raise SpecError(
                    f"{where}.model_name {st.model!r}: max_batch_size {sub.max_batch_size} is below the ensemble's "
                    f"{ens.max_batch_size} (a step must take every batch the ensemble accepts)"
                )
            ins = {t.name: t for t in sub.inputs}
            outs = {t.name: t for t in sub.outputs}
            for key in st.input_map:
                if key not in ins:
                    raise SpecError(f"{where}.input_map key {key!r}: model {sub.name!r} has no input {key!r} "
                                    f"(inputs {sorted(ins)})")  # fmt: skip
            missing = sorted(set(ins) - set(st.input_map))
            if missing:
                raise SpecError(f"{where}.input_map: model {sub.name!r} input(s) {missing} are not mapped")
            for key, tensor in st.output_map.items():
                if key not in outs:
                    raise SpecError(f"{where}.output_map key {key!r}: model {sub.name!r} has no output {key!r} "
                                    f"(outputs {sorted(outs)})")  # fmt: skip
                if tensor in made:
                    raise SpecError(
                        f"{where}.output_map {key!r} -> {tensor!r}: ensemble tensor {tensor!r} is already produced "
                        f"by {made[tensor][2]} (each tensor has one producer)"
                    )
                o = outs[key]
                made[tensor] = (_dtype(o.data_type), _full(sub, o), f"step[{i}] ({sub.name}) output {key!r}")
            models.append(sub)
        ready = {t.name for t in ens.inputs}
        pending = list(range(len(ens.ensemble)))
        used: set[str] = set()
        while pending:  # run the DAG: a step is ready once every tensor it reads exists
            runnable = [i for i in pending if set(ens.ensemble[i].input_map.values()) <= ready]
            if not runnable:
                i = pending[0]
                st = ens.ensemble[i]
                lost = sorted(t for t in st.input_map.values() if t not in made)
                why = f"ensemble tensor(s) {lost} are never produced" if lost else "the steps form a cycle"
                raise SpecError(f"{m}: ensemble_scheduling.step[{i}].input_map: {why} (inputs: "
                                f"{[t.name for t in ens.inputs]})")  # fmt: skip
            for i in runnable:
                st, sub = ens.ensemble[i], models[i]
                for key, tensor in st.input_map.items():
                    want = next(t for t in sub.inputs if t.name == key)
                    dtype, shape, origin = made[tensor]
                    where = f"{m}: ensemble_scheduling.step[{i}].input_map {key!r} <- {tensor!r}"
                    if dtype != _dtype(want.data_type):
                        raise SpecError(f"{where}: data_type mismatch: {origin} is {dtype}, model {sub.name!r} "
                                        f"input {key!r} is {_dtype(want.data_type)}")  # fmt: skip
                    if not _shapes_agree(shape, _full(sub, want)):
                        raise SpecError(f"{where}: shape mismatch: {origin} is {list(shape)}, model {sub.name!r} "
                                        f"input {key!r} is {list(_full(sub, want))} (batch axis first)")  # fmt: skip
                    used.add(tensor)
                ready |= set(st.output_map.values())
                pending.remove(i)
        unused = [t.name for t in ens.inputs if t.name not in used]
        if unused:
            raise SpecError(f"{m}: inputs {unused}: not read by any ensemble_scheduling step")
        for t in ens.outputs:
            if t.name not in made or made[t.name][2].startswith("ensemble input"):
                raise SpecError(f"{m}: outputs {t.name!r}: no ensemble_scheduling step's output_map produces it")
            dtype, shape, origin = made[t.name]
            if dtype != _dtype(t.data_type):
                raise SpecError(f"{m}: outputs {t.name!r} data_type {_dtype(t.data_type)}: mismatch, {origin} is "
                                f"{dtype}")  # fmt: skip
            if not _shapes_agree(shape, _full(ens, t)):
                raise SpecError(f"{m}: outputs {t.name!r} dims {list(t.dims)}: shape mismatch, {origin} is "
                                f"{list(shape)} (batch axis first)")  # fmt: skip


def validate_rate_limits(specs: Sequence[ModelSpec], resources: dict[str, int]) -> None:
    """Check the server's `--rate-limit-resource` counts against what the models' instances need: a resource
    declared both global and per-device, a negative count, or an instance needing more than the server has
    would make Triton refuse to start or never schedule that instance. Raises SpecError naming the field."""
    for name, count in resources.items():
        if isinstance(count, bool) or not isinstance(count, int) or count < 0:
            raise SpecError(f"--rate-limit-resource {name}:{count!r}: count must be an integer >= 0")
    scope: dict[str, tuple[bool, str]] = {}
    for s in specs:
        for i, g in enumerate(s.instance_groups if not s.ensemble else ()):
            if g.rate_limiter is None:
                continue
            for r, need in g.rate_limiter.resources.items():
                where = f"model {s.name!r}: instance_groups[{i}].rate_limiter.resources[{r!r}]"
                is_global = r in g.rate_limiter.global_resources
                if r in scope and scope[r][0] != is_global:
                    raise SpecError(f"{where}: declared {'global' if is_global else 'per-device'} here but "
                                    f"{'global' if scope[r][0] else 'per-device'} by {scope[r][1]}")  # fmt: skip
                scope[r] = (is_global, f"model {s.name!r}")
                if r in resources and need > resources[r]:
                    raise SpecError(f"{where}.count {need}: more than the server's --rate-limit-resource "
                                    f"{r}:{resources[r]} (the instance could never run)")  # fmt: skip


def rate_limit_args(specs: Sequence[ModelSpec], resources: dict[str, int]) -> list[str]:
    """tritonserver flags that turn the rate limiter on with these resource counts, after checking them against
    the models' instances (validate_rate_limits)."""
    validate_rate_limits(specs, resources)
    return ["--rate-limit=execution_count", *(f"--rate-limit-resource={n}:{c}" for n, c in resources.items())]


def to_config(spec: ModelSpec) -> mc.ModelConfig:
    """The spec as Triton's ModelConfig message (python backend; the runtime goes into `parameters`), or for an
    ensemble spec platform "ensemble" with its ensemble_scheduling steps."""
    if spec.ensemble:
        return _ensemble_config(spec)
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
                res = ig.rate_limiter.resources.add(name=name, count=count)
                setattr(res, "global", name in g.rate_limiter.global_resources)  # `global` is a Python keyword
    if spec.dynamic_batching is not None:
        db = spec.dynamic_batching
        cfg.dynamic_batching.SetInParent()  # present even with all defaults: "dynamic_batching { }" turns it on
        cfg.dynamic_batching.preferred_batch_size.extend(db.preferred_batch_sizes)
        cfg.dynamic_batching.max_queue_delay_microseconds = db.max_queue_delay_us
        cfg.dynamic_batching.priority_levels = db.priority_levels
        cfg.dynamic_batching.default_priority_level = db.default_priority_level
        if db.queue_policy:
            _queue_policy(cfg.dynamic_batching.default_queue_policy, db.queue_policy)
        for level, q in sorted(db.priority_queue_policy.items()):
            _queue_policy(cfg.dynamic_batching.priority_queue_policy[level], q)
    if spec.response_cache:
        cfg.response_cache.enable = True
    params = {"runtime": spec.runtime, "intra_op_threads": "1", **spec.parameters}
    for k, v in params.items():
        cfg.parameters[k].string_value = str(v)
    return cfg


def _queue_policy(p: mc.ModelQueuePolicy, q: QueuePolicy) -> None:
    p.timeout_action = mc.ModelQueuePolicy.TimeoutAction.Value(q.timeout_action)
    p.default_timeout_microseconds = q.default_timeout_us
    p.allow_timeout_override = q.allow_timeout_override
    p.max_queue_size = q.max_queue_size


def _ensemble_config(spec: ModelSpec) -> mc.ModelConfig:
    cfg = mc.ModelConfig(name=spec.name, platform="ensemble", max_batch_size=spec.max_batch_size)
    for t in spec.inputs:
        cfg.input.add(name=t.name, data_type=mc.DataType.Value(_dtype(t.data_type)), dims=list(t.dims))
    for t in spec.outputs:
        cfg.output.add(name=t.name, data_type=mc.DataType.Value(_dtype(t.data_type)), dims=list(t.dims))
    for st in spec.ensemble:
        step = cfg.ensemble_scheduling.step.add(model_name=st.model, model_version=st.model_version)
        step.input_map.update(st.input_map)
        step.output_map.update(st.output_map)
    if spec.response_cache:
        cfg.response_cache.enable = True
    return cfg
