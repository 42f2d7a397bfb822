"""Typed `sequence_batching` section of a Triton ModelConfig, validated, applied to the protobuf that
workloads.serving.modelspec.to_config() returns (the rest of the config stays that module's).

    cfg = SequenceBatching(strategy="oldest").apply(to_config(spec), spec)
"""

from __future__ import annotations

from dataclasses import dataclass

from tritonclient.grpc import model_config_pb2 as mc

from workloads.serving.modelspec import DATA_TYPES, ModelSpec, SpecError

STRATEGIES = ("direct", "oldest")
CONTROL_KINDS = (
    "CONTROL_SEQUENCE_START",
    "CONTROL_SEQUENCE_READY",
    "CONTROL_SEQUENCE_END",
    "CONTROL_SEQUENCE_CORRID",
)
# What Triton accepts for each kind: the flag kinds carry 0/1 as int32, fp32 or bool; CORRID the id's own type.
FLAG_TYPES = ("TYPE_INT32", "TYPE_FP32", "TYPE_BOOL")
CORRID_TYPES = ("TYPE_UINT64", "TYPE_INT64", "TYPE_UINT32", "TYPE_INT32", "TYPE_STRING")


@dataclass(frozen=True)
class Control:
    """One control input the sequence batcher fills in (the model declares it here, not under `input`)."""

    name: str
    kind: str  # one of CONTROL_KINDS
    data_type: str = "TYPE_INT32"


@dataclass(frozen=True)
class State:
    """Implicit state kept by Triton between the requests of a sequence (backends that support it)."""

    input_name: str
    output_name: str
    data_type: str
    dims: tuple[int, ...]


DEFAULT_CONTROLS = (
    Control("START", "CONTROL_SEQUENCE_START"),
    Control("END", "CONTROL_SEQUENCE_END"),
    Control("READY", "CONTROL_SEQUENCE_READY"),
    Control("CORRID", "CONTROL_SEQUENCE_CORRID", "TYPE_UINT64"),
)


@dataclass(frozen=True)
class SequenceBatching:
    strategy: str = "oldest"  # direct: one batch slot per sequence; oldest: batch the oldest sequences' next requests
    max_sequence_idle_us: int = 5_000_000  # a sequence idle this long is released (its next request needs START)
    controls: tuple[Control, ...] = DEFAULT_CONTROLS
    states: tuple[State, ...] = ()
    max_queue_delay_us: int = 0  # direct and oldest
    max_candidate_sequences: int = 16  # oldest only
    preferred_batch_sizes: tuple[int, ...] = ()  # oldest only
    minimum_slot_utilization: float = 0.0  # direct only

    def validate(self, spec: ModelSpec) -> None:
        """Raise SpecError naming the model and the field for anything Triton would reject."""
        m = f"model {spec.name!r}: sequence_batching"
        if self.strategy not in STRATEGIES:
            raise SpecError(f"{m}.strategy {self.strategy!r}: allowed {', '.join(STRATEGIES)}")
        if self.max_sequence_idle_us <= 0:
            raise SpecError(f"{m}.max_sequence_idle_microseconds {self.max_sequence_idle_us}: must be > 0")
        if self.max_queue_delay_us < 0:
            raise SpecError(f"{m}.max_queue_delay_microseconds {self.max_queue_delay_us}: must be >= 0")
        if spec.dynamic_batching is not None:
            raise SpecError(
                f"model {spec.name!r}: dynamic_batching and sequence_batching: a model has one scheduler "
                "(ModelConfig.scheduling_choice), remove dynamic_batching"
            )
        inputs = {t.name for t in spec.inputs}
        names: set[str] = set()
        kinds: set[str] = set()
        for i, c in enumerate(self.controls):
            f = f"{m}.control_input[{i}]"
            if c.kind not in CONTROL_KINDS:
                raise SpecError(f"{f}.kind {c.kind!r}: allowed {', '.join(CONTROL_KINDS)}")
            if not c.name:
                raise SpecError(f"{f}.name: must not be empty")
            if c.name in names:
                raise SpecError(f"{f}.name {c.name!r}: duplicated (each control input needs its own name)")
            if c.name in inputs:
                raise SpecError(f"{f}.name {c.name!r}: also a model input (controls are filled in by the batcher)")
            if c.kind in kinds:
                raise SpecError(f"{f}.kind {c.kind}: given twice (one control input per kind)")
            allowed = CORRID_TYPES if c.kind == "CONTROL_SEQUENCE_CORRID" else FLAG_TYPES
            if c.data_type not in allowed:
                raise SpecError(f"{f}.data_type {c.data_type!r} for {c.kind}: allowed {', '.join(allowed)}")
            names.add(c.name)
            kinds.add(c.kind)
        if "CONTROL_SEQUENCE_START" not in kinds and not self.states:
            raise SpecError(f"{m}.control_input: a stateful model needs CONTROL_SEQUENCE_START to reset its state")
        for i, s in enumerate(self.states):
            f = f"{m}.state[{i}]"
            if s.data_type not in DATA_TYPES:
                raise SpecError(f"{f}.data_type {s.data_type!r}: allowed {', '.join(DATA_TYPES)}")
            if not s.dims or any(d == 0 or d < -1 for d in s.dims):
                raise SpecError(f"{f}.dims {list(s.dims)}: each must be > 0 or -1")
            for field_name, n in (("input_name", s.input_name), ("output_name", s.output_name)):
                if not n or n in names or n in inputs:
                    raise SpecError(f"{f}.{field_name} {n!r}: must be a new, non-empty name (not an input or control)")
                names.add(n)
        if self.strategy == "oldest":
            if self.max_candidate_sequences < 1:
                raise SpecError(f"{m}.oldest.max_candidate_sequences {self.max_candidate_sequences}: must be >= 1")
            for p in self.preferred_batch_sizes:
                if not 1 <= p <= max(spec.max_batch_size, 1):
                    raise SpecError(
                        f"{m}.oldest.preferred_batch_size {p}: allowed 1..max_batch_size ({spec.max_batch_size})"
                    )
        else:
            if self.preferred_batch_sizes:
                raise SpecError(f"{m}.direct: preferred_batch_size exists only for the oldest strategy")
            if not 0.0 <= self.minimum_slot_utilization <= 1.0:
                raise SpecError(
                    f"{m}.direct.minimum_slot_utilization {self.minimum_slot_utilization}: allowed 0.0..1.0"
                )

    def apply(self, cfg: mc.ModelConfig, spec: ModelSpec) -> mc.ModelConfig:
        """Validate against `spec`, then set cfg.sequence_batching (in place; returns cfg)."""
        self.validate(spec)
        sb = cfg.sequence_batching
        sb.SetInParent()
        sb.max_sequence_idle_microseconds = self.max_sequence_idle_us
        for c in self.controls:
            ci = sb.control_input.add(name=c.name)
            ctl = ci.control.add(kind=mc.ModelSequenceBatching.Control.Kind.Value(c.kind))
            if c.kind == "CONTROL_SEQUENCE_CORRID":
                ctl.data_type = mc.DataType.Value(c.data_type)
            elif c.data_type == "TYPE_INT32":
                ctl.int32_false_true.extend([0, 1])
            elif c.data_type == "TYPE_FP32":
                ctl.fp32_false_true.extend([0.0, 1.0])
            else:
                ctl.bool_false_true.extend([False, True])
        for s in self.states:
            st = sb.state.add(input_name=s.input_name, output_name=s.output_name, dims=list(s.dims))
            st.data_type = mc.DataType.Value(s.data_type)
        if self.strategy == "direct":
            sb.direct.SetInParent()
            sb.direct.max_queue_delay_microseconds = self.max_queue_delay_us
            sb.direct.minimum_slot_utilization = self.minimum_slot_utilization
        else:
            sb.oldest.SetInParent()
            sb.oldest.max_candidate_sequences = self.max_candidate_sequences
            sb.oldest.preferred_batch_size.extend(self.preferred_batch_sizes)
            sb.oldest.max_queue_delay_microseconds = self.max_queue_delay_us
        return cfg
