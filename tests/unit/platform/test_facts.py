"""The facts both planes read (ailab/contract/facts/*.yaml): loaded, checked, and the one source of what they hold.

A bad file is refused with its name, the field and what is allowed; the image catalogue, the operator's CRD
identity, the week's models and local services that the data plane uses are the very values in those files.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from ailab.contract import facts
from ailab.contract.paths import REPO_ROOT
from ailab.local import registry
from ailab.platform import objects, serving
from ailab.platform.config import StackSettings
from workloads.images import catalog
from workloads.operator import reconcile
from workloads.serving.repository import week_models

FACTS = REPO_ROOT / "ailab" / "contract" / "facts"


def _bad(tmp_path: Path, name: str, edit) -> Path:
    """A copy of facts file `name` with `edit(data)` applied, written under tmp_path."""
    data = yaml.safe_load((FACTS / name).read_text())
    edit(data)
    path = tmp_path / name
    path.write_text(yaml.safe_dump(data))
    return path


@pytest.mark.parametrize(
    ("name", "model", "edit", "words"),
    [
        ("images.yaml", facts.Images, lambda d: d.update(tag="0.1"), "images.yaml: tag = '0.1': String should match"),
        (
            "images.yaml",
            facts.Images,
            lambda d: d["workload"]["exporter"].update(gpu_base="cuda-11"),
            "images.yaml: workload.exporter.gpu_base = 'cuda-11': not one of bases (allowed: ",
        ),
        (
            "images.yaml",
            facts.Images,
            lambda d: d["workload"]["inference"].update(dockerfil="x"),
            "images.yaml: workload.inference.dockerfil = 'x': Extra inputs are not permitted",
        ),
        (
            "operator.yaml",
            facts.OperatorFacts,
            lambda d: d.update(version="1"),
            "operator.yaml: version = '1': String should match pattern",
        ),
        ("operator.yaml", facts.OperatorFacts, lambda d: d.pop("plural"), "operator.yaml: plural: Field required"),
        (
            "weeks.yaml",
            facts.Weeks,
            lambda d: d["weeks"][7].update(models=[]),
            "weeks.yaml: weeks.7.models: Tuple should have at least 1 item",
        ),
        (
            "weeks.yaml",
            facts.Weeks,
            lambda d: d["weeks"][3].update(local=["triton", "triton"]),
            "weeks.yaml: weeks.3.local: Value error, triton listed twice",
        ),
        (
            "weeks.yaml",
            facts.Weeks,
            lambda d: d["weeks"].pop(13),
            "weeks.yaml: weeks: weeks 1-13 each once (missing: [13]",
        ),
        (
            "mig_profiles.yaml",
            facts.MigProfiles,
            lambda d: d["gpus"]["H200-141GB"]["profiles"]["2g.35gb"].update(compute=3),
            "mig_profiles.yaml: gpus.H200-141GB: profiles.2g.35gb.compute = 3: the name says 2",
        ),
        (
            "mig_profiles.yaml",
            facts.MigProfiles,
            lambda d: d["gpus"]["A30-24GB"]["profiles"].update(
                {"8g.48gb": {"compute": 8, "memory": 4, "max_instances": 1}}
            ),
            "mig_profiles.yaml: gpus.A30-24GB: profiles.8g.48gb: 8 compute / 4 memory slices exceed the GPU's 4 / 4",
        ),
    ],
)
def test_a_bad_facts_file_is_refused_naming_the_file_and_field(tmp_path: Path, name, model, edit, words) -> None:
    with pytest.raises(facts.FactsError) as exc:
        facts.load(_bad(tmp_path, name, edit), model)
    assert words.replace("Value error, ", "") in str(exc.value)


def test_unreadable_or_broken_files_are_named(tmp_path: Path) -> None:
    with pytest.raises(facts.FactsError, match=r"nope\.yaml: cannot read"):
        facts.load(tmp_path / "nope.yaml", facts.Images)
    broken = tmp_path / "weeks.yaml"
    broken.write_text("weeks: {1: [\n")
    with pytest.raises(facts.FactsError, match=r"weeks\.yaml: not valid YAML"):
        facts.load(broken, facts.Weeks)


def test_unknown_week_is_refused() -> None:
    with pytest.raises(facts.FactsError, match="week 14: unknown"):
        facts.week(14)


def test_image_catalogue_is_the_facts_file() -> None:
    images = facts.images()
    assert images.tag == catalog.TAG and set(catalog.IMAGES) == set(images.workload)
    assert catalog.ref("exporter") == images.ref("exporter") == f"{catalog.REGISTRY}/ailab-exporter:{images.tag}"
    assert catalog.ref("exporter", "ghcr.io/lab/") == f"ghcr.io/lab/ailab-exporter:{images.tag}"
    assert catalog.IMAGES["cuda-kernels"].local_base is None
    assert catalog.IMAGES["inference"].gpu_base == images.bases["cuda-runtime"]
    with pytest.raises(KeyError, match="allowed: inference"):
        images.ref("gpu-burn")


def test_operator_and_its_crd_share_one_identity() -> None:
    op = facts.operator()
    crd = objects.operator_crd()
    assert (
        op.group,
        op.version,
        op.kind,
        op.plural,
    ) == (reconcile.GROUP, reconcile.VERSION, reconcile.KIND, reconcile.PLURAL)
    assert crd["metadata"]["name"] == op.crd_name and crd["spec"]["names"]["kind"] == op.kind
    assert facts.images().pinned("tritonserver") == reconcile.TRITON_IMAGE


@pytest.mark.parametrize("week", range(1, 14))
def test_each_weeks_models_and_services_come_from_its_facts(week: int) -> None:
    f = facts.week(week)
    assert [m.name for m in week_models(week)] == list(f.models)
    assert serving.model_names(StackSettings(week=week)) == list(f.models)
    assert registry.week_services(week) == list(f.local)


def test_a_model_the_serving_code_does_not_define_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    from workloads.serving.repository import SpecError

    week = facts.week(2).model_copy(update={"models": ("mlp", "bert_large")})
    monkeypatch.setattr(facts, "week", lambda n: week)
    with pytest.raises(SpecError, match=r"weeks\.2\.models: unknown model\(s\) \['bert_large'\]"):
        week_models(2)


def test_a_local_service_that_does_not_exist_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    week = facts.week(4).model_copy(update={"local": ("triton", "grafana")})
    monkeypatch.setattr(facts, "week", lambda n: week)
    with pytest.raises(registry.PlatformError, match=r"weeks\.4\.local: unknown service\(s\) \['grafana'\]"):
        registry.week_services(4)
