"""Priority levels and rate-limiter resources: written into Triton's ModelConfig, and values Triton would refuse
refused before anything is written or started, naming the field. Also the pure helpers the runners report with."""

from __future__ import annotations

from pathlib import Path

import pytest
from tritonclient.grpc import model_config_pb2 as mc

from workloads.multimodel import drive
from workloads.multimodel.models import fixed_cost, large, small
from workloads.serving.modelspec import (
    DynamicBatching,
    QueuePolicy,
    RateLimiter,
    SpecError,
    rate_limit_args,
    to_config,
)
from workloads.serving.repository import build_repository, read_config

SHARED = RateLimiter({"R": 1, "mem": 2}, priority=2, global_resources=("R",))


def test_rate_limiter_resources_priority_and_global_flag_reach_the_protobuf():
    cfg = to_config(fixed_cost("a", 20, count=2, rate_limiter=SHARED))
    rl = cfg.instance_group[0].rate_limiter
    assert rl.priority == 2
    got = {r.name: (r.count, getattr(r, "global")) for r in rl.resources}
    assert got == {"R": (1, True), "mem": (2, False)}
    assert cfg.parameters["delay_ms"].string_value == "20"


def test_priority_levels_and_per_level_queue_policy_reach_the_protobuf():
    db = DynamicBatching(
        preferred_batch_sizes=(4,),
        priority_levels=3,
        default_priority_level=2,
        priority_queue_policy={3: QueuePolicy("REJECT", default_timeout_us=5000, max_queue_size=10)},
    )
    cfg = to_config(fixed_cost("p", 10, max_batch_size=4, dynamic_batching=db))
    d = cfg.dynamic_batching
    assert (d.priority_levels, d.default_priority_level) == (3, 2)
    assert d.priority_queue_policy[3].max_queue_size == 10
    assert d.priority_queue_policy[3].timeout_action == mc.ModelQueuePolicy.REJECT


def db_spec(**kw: object):
    return fixed_cost("p", 10, max_batch_size=4, dynamic_batching=DynamicBatching(**kw))  # type: ignore[arg-type]


def rl_spec(rl: RateLimiter):
    return fixed_cost("r", 10, rate_limiter=rl)


BAD = {
    "default_above_levels": (db_spec(priority_levels=2, default_priority_level=3),
                             ["dynamic_batching.default_priority_level 3", "allowed 1..priority_levels (2)"]),
    "default_zero_with_levels": (db_spec(priority_levels=2, default_priority_level=0),
                                 ["default_priority_level 0", "allowed 1..priority_levels (2)"]),
    "default_without_levels": (db_spec(priority_levels=0, default_priority_level=1),
                               ["default_priority_level 1", "must be 0 when priority_levels is 0"]),
    "negative_levels": (db_spec(priority_levels=-1), ["priority_levels -1", "must be >= 0"]),
    "policy_level_out_of_range": (db_spec(priority_levels=2, default_priority_level=1,
                                          priority_queue_policy={5: QueuePolicy()}),
                                  ["priority_queue_policy level 5", "allowed 1..priority_levels (2)"]),
    "policy_negative_size": (db_spec(priority_levels=2, default_priority_level=1,
                                     priority_queue_policy={1: QueuePolicy(max_queue_size=-1)}),
                             ["priority_queue_policy[1].max_queue_size -1", ">= 0"]),
    "negative_resource": (rl_spec(RateLimiter({"R": -1})),
                          ["instance_groups[0].rate_limiter.resources['R'].count -1", "integer >= 0"]),
    "negative_priority": (rl_spec(RateLimiter({"R": 1}, priority=-2)),
                          ["instance_groups[0].rate_limiter.priority -2", ">= 0"]),
    "unknown_global": (rl_spec(RateLimiter({"R": 1}, global_resources=("G",))),
                       ["rate_limiter.global_resources ['G']", "not among resources ['R']"]),
    "empty_name": (rl_spec(RateLimiter({"": 1})), ["rate_limiter.resources: a resource name is empty"]),
}  # fmt: skip


@pytest.mark.parametrize("case", sorted(BAD))
def test_configs_triton_would_refuse_are_refused_before_writing(lab_tmp: Path, case: str):
    spec, words = BAD[case]
    out = lab_tmp / "repo"
    with pytest.raises(SpecError) as exc:
        build_repository([small("ok"), spec], out, n_gpus=0)
    assert f"model {spec.name!r}" in str(exc.value)
    for w in words:
        assert w in str(exc.value), str(exc.value)
    assert not out.exists()


def test_server_rate_limit_flags_are_checked_against_the_instances():
    specs = [fixed_cost("a", 10, rate_limiter=SHARED), fixed_cost("b", 10, rate_limiter=SHARED)]
    assert rate_limit_args(specs, {"R": 2, "mem": 4}) == [
        "--rate-limit=execution_count",
        "--rate-limit-resource=R:2",
        "--rate-limit-resource=mem:4",
    ]
    with pytest.raises(SpecError, match=r"--rate-limit-resource R:-1: count must be an integer >= 0"):
        rate_limit_args(specs, {"R": -1})
    with pytest.raises(SpecError, match=r"model 'a'.*resources\['mem'\].count 2: more than the server's"):
        rate_limit_args(specs, {"mem": 1})
    mixed = [specs[0], fixed_cost("c", 10, rate_limiter=RateLimiter({"R": 1}))]
    with pytest.raises(SpecError, match=r"model 'c'.*declared per-device here but global by model 'a'"):
        rate_limit_args(mixed, {"R": 2})


def test_multimodel_repository_builds_with_its_own_model_files(lab_tmp: Path):
    out = build_repository([small("small"), large("large"), fixed_cost("f", 5)], lab_tmp / "repo", n_gpus=0)
    assert (out / "large" / "1" / "model.onnx").stat().st_size > 30e6  # ~10 M float32 weights
    assert "delay_ms" in (out / "f" / "1" / "model.py").read_text()
    assert read_config(out / "f" / "config.pbtxt").parameters["delay_ms"].string_value == "5"


def test_jain_index_and_jitter():
    assert drive.jain([5.0, 5.0]) == pytest.approx(1.0)
    assert drive.jain([10.0, 0.0]) == pytest.approx(0.5)
    j = drive.jitter([1.0] * 98 + [11.0, 21.0])
    assert j["p99-p50"] == pytest.approx(10.0) and j["p99.9-p50"] == pytest.approx(20.0)
    assert j["iqr"] == 0.0
