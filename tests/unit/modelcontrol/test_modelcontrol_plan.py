"""Model-control building blocks without a server: plans checked against the versions on disk before anything
starts, typed parameters, the timeline windows, tritonserver log parsing, staged versions."""

from __future__ import annotations

import re

import pytest
from pydantic import ValidationError

from workloads.modelcontrol import control
from workloads.modelcontrol.experiments.control_modes import PollParams
from workloads.modelcontrol.experiments.hot_update import HotUpdateParams
from workloads.modelcontrol.experiments.perf_curves import VARIANTS, ConfigChangeParams
from workloads.modelcontrol.experiments.policies import policy
from workloads.serving.modelspec import SpecError, VersionPolicy, to_config
from workloads.serving.repository import mlp_spec, model_cache


def test_a_policy_naming_a_version_not_in_the_repository_is_refused_before_start():
    spec = mlp_spec("clf", versions=(1, 2))
    with pytest.raises(SpecError, match=r"plan step 1: model 'clf': version_policy.versions \[3\]: must be among"):
        control.check_plan(spec, [VersionPolicy("specific", versions=(2,)), VersionPolicy("specific", versions=(3,))])


def test_a_latest_policy_of_zero_versions_is_refused_naming_the_field():
    with pytest.raises(SpecError, match=r"version_policy\.num_versions 0"):
        control.check_plan(mlp_spec("clf"), [VersionPolicy("latest", num_versions=0)])


def test_a_valid_plan_gives_one_spec_per_step_with_its_policy():
    specs = control.check_plan(
        mlp_spec("clf", versions=(1, 2)), [policy("specific 2"), policy("all"), policy("latest 2")]
    )
    cfgs = [to_config(s).version_policy for s in specs]
    assert list(cfgs[0].specific.versions) == [2]
    assert cfgs[1].WhichOneof("policy_choice") == "all"
    assert cfgs[2].latest.num_versions == 2
    assert [control.policy_name(s.version_policy) for s in specs] == ["specific [2]", "all", "latest 2"]


def test_config_json_is_the_override_the_repository_api_takes():
    import json

    spec = control.check_plan(mlp_spec("clf", versions=(1, 2)), [policy("specific 1,2")])[0]
    cfg = json.loads(control.config_json(spec))
    # protobuf's JSON writes int64 as strings; Triton reads it with the same mapping
    assert cfg["name"] == "clf" and cfg["version_policy"] == {"specific": {"versions": ["1", "2"]}}


@pytest.mark.parametrize(
    ("kw", "field"),
    [
        ({"start": 1, "switches": [1]}, "switches[0] 1: the version already serving"),
        ({"start": 1, "switches": [2, 2]}, "switches[1] 2"),
        ({"switches": [3]}, "switches.0"),
        ({"switches": [True]}, "not a boolean"),
        ({"switches": []}, "switches"),
        ({"mode": "none"}, "mode"),
        ({"poll_secs": 0}, "poll_secs"),
        ({"load_warmup_s": 0.0}, "load_warmup_s"),
        ({"load_warmup_s": "short"}, "load_warmup_s"),
    ],
)
def test_hot_update_params_refuse_a_bad_plan_naming_the_field(kw, field):
    with pytest.raises(ValidationError, match=re.escape(field)):
        HotUpdateParams(**kw)


def test_the_load_lead_in_defaults_to_the_full_runs_one_second():
    assert HotUpdateParams().load_warmup_s == 1.0


def test_other_params_refuse_bad_values():
    with pytest.raises(ValidationError, match="poll_secs"):
        PollParams(poll_secs=[])
    with pytest.raises(ValidationError, match="variants"):
        ConfigChangeParams(variants=["baseline"])
    with pytest.raises(ValidationError, match="variants"):
        ConfigChangeParams(variants=["baseline", "instances_3"])


def test_every_config_variant_is_a_valid_spec():
    from workloads.serving.common import variant
    from workloads.serving.modelspec import validate

    for name, (_, kw) in VARIANTS.items():
        validate(variant(name, **kw))


def test_timeline_windows_count_requests_failures_and_exact_percentiles():
    tl = [(0.1, 1.0, ""), (0.2, 3.0, ""), (0.6, 100.0, ""), (0.7, 0.0, "server"), (1.2, 2.0, "")]
    w = control.window(tl, 0.0, 1.0)
    assert (w.requests, w.failed) == (4, 1)
    assert w.pct(50) == 3.0 and w.pct(99) == 100.0 and w.max == 100.0
    b = control.buckets(tl, 0.5, 1.5)
    assert [(t, x.requests, x.failed) for t, x in b] == [(0.0, 2, 0), (0.5, 2, 1), (1.0, 1, 0)]


LOG = """I1202 01:49:12.339192 16467 model_lifecycle.cc:472] "loading: clf:1"
I1202 01:49:14.448452 16467 model_lifecycle.cc:839] "successfully loaded 'clf'"
I1202 01:49:15.451201 16467 model_lifecycle.cc:472] "loading: other:2"
I1202 01:49:15.725916 16467 model_lifecycle.cc:624] "successfully unloaded 'clf' version 1"
"""


def test_log_events_are_read_from_an_offset_for_one_model(tmp_path):
    log = tmp_path / "triton.log"
    log.write_text("old line\n")
    off = control.log_offset(log)
    with log.open("a") as f:
        f.write(LOG)
    ev = control.log_events(log, off, "clf")
    assert ev == [
        ("01:49:12.339192", "loading", 1),
        ("01:49:14.448452", "loaded", 0),
        ("01:49:15.725916", "unloaded", 1),
    ]
    assert control.seconds_of_day("01:49:15.5") == pytest.approx(6555.5)


def test_stage_version_renames_a_complete_perturbed_copy_in(tmp_path):
    import numpy as np
    import onnx
    from onnx import numpy_helper

    from workloads.models.mlp import export_default_model

    mdir = tmp_path / "clf"
    (mdir / "1").mkdir(parents=True)
    (mdir / "1" / "model.onnx").write_bytes(export_default_model(model_cache()).read_bytes())
    (mdir / "1" / "model.py").write_text("# backend\n")
    staging = tmp_path / "staging"
    staging.mkdir()
    v2 = control.stage_version(mdir, 2, staging, seed=3)
    assert sorted(p.name for p in v2.iterdir()) == ["model.onnx", "model.py"]
    assert not list(staging.iterdir())  # moved, not copied
    w1 = {i.name: numpy_helper.to_array(i) for i in onnx.load(str(mdir / "1" / "model.onnx")).graph.initializer}
    w2 = {i.name: numpy_helper.to_array(i) for i in onnx.load(str(v2 / "model.onnx")).graph.initializer}
    assert w1.keys() == w2.keys()
    assert all(w1[k].shape == w2[k].shape for k in w1)
    assert any(not np.allclose(w1[k], w2[k]) for k in w1)


def test_wait_until_returns_elapsed_or_none():
    calls = iter([False, False, True])
    assert control.wait_until(lambda: next(calls), 5, 0.001) is not None
    assert control.wait_until(lambda: False, 0.05, 0.01) is None
