"""What a week turns on comes from its facts (ailab/contract/facts/weeks.yaml); a stack file only adds the target
and site overrides, and the cluster's components are one registry of builders with one signature."""

from __future__ import annotations

import inspect

import pytest

from ailab.contract import facts
from ailab.platform import weeks
from ailab.platform.config import SECTIONS, SWITCHED, ConfigError, StackSettings
from ailab.platform.model import PlanInputs
from ailab.platform.plan import COMPONENTS, plan_stack

SRC = "Pulumi.week07.yaml"


def test_a_week_turns_on_exactly_the_components_its_facts_list() -> None:
    for w in range(1, 14):
        s = weeks.settings(w)
        listed = facts.week(w).cluster
        for name in SWITCHED:
            assert getattr(s, name).enabled == (name in listed), f"week {w}: {name}"
        built = {p.name for p in plan_stack(s, weeks.stack_file(w).name)} - {"base"}
        assert built == {c.name for c in COMPONENTS.values() if c.switch is None or c.switch in listed}


def test_stack_files_hold_only_the_week_and_the_target() -> None:
    for w in range(1, 14):
        assert set(weeks.stack_config(w)) == {"ailab:week", "ailab:cluster"}, weeks.stack_file(w).name


def test_a_site_override_merges_over_the_weeks_settings() -> None:
    raw = weeks.stack_config(7) | {"ailab:mesh": {"weights": {"stable": 80, "canary": 20}}}
    s = weeks.stack_settings(raw, SRC)
    assert s.mesh.weights == {"stable": 80, "canary": 20}
    assert s.mesh.mirror.enabled and s.mesh.circuit_breaker and s.mesh.circuit_breaker.max_pending_requests == 32


@pytest.mark.parametrize(
    ("override", "words"),
    [
        ({"ailab:mesh": {"enabled": False}}, f"{SRC}: ailab:mesh.enabled: which components week 7 turns on is set in"),
        ({"ailab:cache": {"storage": "2Gi"}}, f"{SRC}: ailab:cache: week 7 does not turn cache on"),
        ({"ailab:serving": {"replicas": 0}}, f"{SRC}: ailab:serving.replicas = 0: Input should be greater than"),
        ({"ailab:gpus": {}}, f"{SRC}: ailab:gpus: unknown key"),
    ],
)
def test_a_bad_override_names_the_stack_file_and_key(override: dict, words: str) -> None:
    with pytest.raises(ConfigError) as exc:
        weeks.stack_settings(weeks.stack_config(7) | override, SRC)
    assert words in str(exc.value)


@pytest.mark.parametrize(
    ("cluster", "words"),
    [
        ({"gpus": {}}, "ailab/contract/facts/weeks.yaml: weeks.7.cluster.gpus: unknown component (allowed: gpu,"),
        ({"cluster": {"target": "k3s"}}, "weeks.7.cluster.cluster: unknown component"),
        ({"mesh": {"enabled": True}}, "weeks.7.cluster.mesh.enabled: a component is on when the week lists it"),
        (
            {"serving": {"replicas": 0}},
            "ailab/contract/facts/weeks.yaml: weeks.7.cluster.serving.replicas = 0: Input should be greater than",
        ),
        ({"gpu": {"mig": {"layouts": {"x": {"1g.10gb": 1}}}}}, "weeks.7.cluster.gpu: mig layouts are applied by"),
    ],
)
def test_bad_week_facts_name_the_facts_file_and_field(
    cluster: dict, words: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    week = facts.week(7).model_copy(update={"cluster": cluster})
    monkeypatch.setattr(facts, "week", lambda n: week)
    with pytest.raises(ConfigError) as exc:
        weeks.stack_settings(weeks.stack_config(7), SRC)
    assert words in str(exc.value)


def test_components_are_one_registry_with_one_signature() -> None:
    assert list(COMPONENTS) == [c.name for c in COMPONENTS.values()]
    for c in COMPONENTS.values():
        params = list(inspect.signature(c.build).parameters.values())
        assert [p.annotation for p in params] == ["StackSettings", "PlanInputs"], c.name
        assert c.switch is None or c.switch in SWITCHED, c.name
    assert set(COMPONENTS) <= set(SECTIONS)


def test_a_component_builder_runs_from_the_registry_alone(tmp_path) -> None:
    s = StackSettings(week=2, monitoring={"enabled": True, "dashboards": False, "rules": False})
    plan = COMPONENTS["monitoring"].build(s, PlanInputs("ailab", tmp_path))
    assert plan.name == "monitoring" and plan.releases[0].key == "kube-prometheus-stack"


def test_a_broken_facts_file_stops_the_stack_naming_it(tmp_path, monkeypatch: pytest.MonkeyPatch) -> None:
    for f in facts.FACTS_DIR.glob("*.yaml"):
        (tmp_path / f.name).write_text(f.read_text())
    images = tmp_path / "images.yaml"
    images.write_text(images.read_text().replace("tag: 0.1.0", "tag: latest"))
    s = weeks.settings(1)
    monkeypatch.setattr(facts, "FACTS_DIR", tmp_path)
    facts.reload()
    try:
        with pytest.raises(ConfigError, match=r"images\.yaml: tag = 'latest': String should match pattern"):
            plan_stack(s, "Pulumi.week01.yaml")
    finally:
        monkeypatch.undo()
        facts.reload()
