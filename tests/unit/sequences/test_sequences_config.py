"""SequenceBatching: every config Triton would reject is refused before a server starts, naming the field; a valid
one becomes Triton's ModelConfig protobuf that reads back from the generated config.pbtxt."""

from __future__ import annotations

import dataclasses

import pytest
from google.protobuf import text_format
from tritonclient.grpc import model_config_pb2 as mc

from workloads.sequences.config import Control, SequenceBatching, State
from workloads.sequences.repository import build, config, stateful, stateless
from workloads.serving.modelspec import DynamicBatching, SpecError


def model(**kw):
    return stateful("gru", SequenceBatching(**kw))


@pytest.mark.parametrize(
    ("kw", "field"),
    [
        ({"strategy": "newest"}, "sequence_batching.strategy 'newest'"),
        ({"max_sequence_idle_us": 0}, "max_sequence_idle_microseconds 0"),
        ({"max_sequence_idle_us": -5}, "max_sequence_idle_microseconds -5"),
        ({"max_queue_delay_us": -1}, "max_queue_delay_microseconds -1"),
        (
            {"controls": (Control("START", "CONTROL_SEQUENCE_START"), Control("START", "CONTROL_SEQUENCE_END"))},
            "control_input[1].name 'START': duplicated",
        ),
        ({"controls": (Control("S", "CONTROL_SEQUENCE_BEGIN"),)}, "control_input[0].kind 'CONTROL_SEQUENCE_BEGIN'"),
        ({"controls": (Control("X", "CONTROL_SEQUENCE_START"),)}, "control_input[0].name 'X': also a model input"),
        (
            {"controls": (Control("A", "CONTROL_SEQUENCE_START"), Control("B", "CONTROL_SEQUENCE_START"))},
            "control_input[1].kind CONTROL_SEQUENCE_START: given twice",
        ),
        ({"controls": (Control("S", "CONTROL_SEQUENCE_START", "TYPE_STRING"),)}, "control_input[0].data_type"),
        (
            {
                "controls": (
                    Control("S", "CONTROL_SEQUENCE_START"),
                    Control("C", "CONTROL_SEQUENCE_CORRID", "TYPE_FP32"),
                )
            },
            "control_input[1].data_type 'TYPE_FP32' for CONTROL_SEQUENCE_CORRID",
        ),
        ({"controls": (Control("E", "CONTROL_SEQUENCE_END"),)}, "needs CONTROL_SEQUENCE_START"),
        ({"states": (State("H", "H2", "TYPE_FP33", (32,)),)}, "state[0].data_type 'TYPE_FP33'"),
        ({"states": (State("H", "H2", "TYPE_FP32", (0,)),)}, "state[0].dims [0]"),
        ({"states": (State("START", "H2", "TYPE_FP32", (32,)),)}, "state[0].input_name 'START'"),
        ({"strategy": "oldest", "max_candidate_sequences": 0}, "oldest.max_candidate_sequences 0"),
        ({"strategy": "oldest", "preferred_batch_sizes": (32,)}, "oldest.preferred_batch_size 32"),
        ({"strategy": "direct", "preferred_batch_sizes": (4,)}, "direct: preferred_batch_size exists only"),
        ({"strategy": "direct", "minimum_slot_utilization": 1.5}, "direct.minimum_slot_utilization 1.5"),
    ],
)
def test_a_config_triton_would_reject_is_refused_naming_the_field(kw, field, tmp_path):
    with pytest.raises(SpecError, match="model 'gru'") as e:
        build([model(**kw)], tmp_path / "repo")
    assert field in str(e.value)
    assert not (tmp_path / "repo").exists()  # nothing written


def test_sequence_and_dynamic_batching_together_are_refused():
    m = model()
    both = dataclasses.replace(m, spec=dataclasses.replace(m.spec, dynamic_batching=DynamicBatching()))
    with pytest.raises(SpecError, match="dynamic_batching and sequence_batching"):
        config(both)


def test_a_model_spec_error_from_modelspec_still_names_the_model(tmp_path):
    m = model()
    bad = dataclasses.replace(m, spec=dataclasses.replace(m.spec, max_batch_size=-1))
    with pytest.raises(SpecError, match="max_batch_size -1"):
        build([bad], tmp_path / "repo")


def test_oldest_config_is_the_protobuf_with_every_control(tmp_path):
    repo = build([model(strategy="oldest", max_queue_delay_us=100, preferred_batch_sizes=(4, 8))], tmp_path / "r")
    cfg = text_format.Parse((repo / "gru" / "config.pbtxt").read_text(), mc.ModelConfig())
    sb = cfg.sequence_batching
    assert cfg.WhichOneof("scheduling_choice") == "sequence_batching"
    assert sb.WhichOneof("strategy_choice") == "oldest"
    assert list(sb.oldest.preferred_batch_size) == [4, 8] and sb.oldest.max_queue_delay_microseconds == 100
    kinds = {ci.name: mc.ModelSequenceBatching.Control.Kind.Name(ci.control[0].kind) for ci in sb.control_input}
    assert kinds == {
        "START": "CONTROL_SEQUENCE_START",
        "END": "CONTROL_SEQUENCE_END",
        "READY": "CONTROL_SEQUENCE_READY",
        "CORRID": "CONTROL_SEQUENCE_CORRID",
    }
    start = next(ci for ci in sb.control_input if ci.name == "START").control[0]
    assert list(start.int32_false_true) == [0, 1]
    corrid = next(ci for ci in sb.control_input if ci.name == "CORRID").control[0]
    assert corrid.data_type == mc.TYPE_UINT64
    assert [i.name for i in cfg.input] == ["X"]  # controls are not model inputs
    assert (repo / "gru" / "1" / "model.onnx").exists() and (repo / "gru" / "1" / "model.py").exists()


def test_direct_config_and_flag_types_and_state():
    m = model(
        strategy="direct",
        minimum_slot_utilization=0.5,
        controls=(
            Control("S", "CONTROL_SEQUENCE_START", "TYPE_FP32"),
            Control("R", "CONTROL_SEQUENCE_READY", "TYPE_BOOL"),
        ),
        states=(State("H_STATE_IN", "H_STATE_OUT", "TYPE_FP32", (32,)),),
    )
    sb = config(m).sequence_batching
    assert sb.WhichOneof("strategy_choice") == "direct" and sb.direct.minimum_slot_utilization == 0.5
    assert list(sb.control_input[0].control[0].fp32_false_true) == [0.0, 1.0]
    assert list(sb.control_input[1].control[0].bool_false_true) == [False, True]
    assert sb.state[0].input_name == "H_STATE_IN" and list(sb.state[0].dims) == [32]


def test_stateless_model_is_dynamically_batched_without_sequence_batching():
    cfg = config(stateless("gru_dyn"))
    assert cfg.WhichOneof("scheduling_choice") == "dynamic_batching"
    assert [i.name for i in cfg.input] == ["X", "H_IN"] and [o.name for o in cfg.output] == ["Y", "H_OUT"]
