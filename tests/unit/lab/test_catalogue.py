"""The catalogue: all 90 days and 450 experiments load, and malformed entries fail with file, day and field."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import yaml

from ailab.contract.paths import REPO_ROOT
from ailab.curriculum import CatalogueError, Need
from ailab.curriculum.loader import DAYS_DIR, binding_files, check_runner

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures"


def test_catalogue_has_90_days_and_450_unique_experiments() -> None:
    cat = load_catalogue()
    assert sorted(cat.days) == list(range(1, 91))
    assert len(cat.experiments) == 450
    assert cat.weeks == list(range(1, 14))
    assert all(len(d.questions) == 6 for d in cat.days.values())


def test_every_bound_runner_is_importable_and_every_deliverable_path_exists() -> None:
    cat = load_catalogue(check_runners=True, use_stamp=False)  # every runner imported, every binding validated
    for exp in cat.experiments.values():
        if exp.binding:
            assert check_runner(exp.binding.runner) is None, exp.id
    for day in cat.days.values():
        for d in day.deliverables:
            if d.path:
                assert (REPO_ROOT / d.path).exists(), f"{day.id}: deliverable path {d.path} missing"


def test_time_plan_and_leetcode_lines_are_not_experiments() -> None:
    cat = load_catalogue()
    texts = [e.text for e in cat.experiments.values()]
    assert not any("LeetCode" in t for t in texts)


def _copy_tree(tmp_path: Path) -> tuple[Path, Path]:
    """The days and every area's bindings file copied under tmp_path (bindings/<area>.yaml)."""
    days, bindings = tmp_path / "days", tmp_path / "bindings"
    shutil.copytree(DAYS_DIR, days)
    bindings.mkdir()
    for f in binding_files():
        shutil.copy(f, bindings / f"{f.parent.name}-{f.name}")
    return days, bindings


def load_catalogue(days: Path | None = None, bindings: Path | None = None, **kw):
    """The loader on a copied tree (bindings as a folder of files), or on the repository."""
    from ailab.curriculum import load_catalogue as load

    if days is None:
        return load(**kw)
    return load(days, sorted(bindings.glob("*.yaml")), **kw)


def _edit(path: Path, fn) -> None:
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    fn(data)
    path.write_text(yaml.safe_dump(data, allow_unicode=True, sort_keys=False), encoding="utf-8")


@pytest.mark.parametrize(
    ("mutate", "expected"),
    [
        (lambda d: d["experiments"][2].update(summary=""), "d03.yaml: day 3: field experiments[2].summary"),
        (lambda d: d["experiments"][0].update(needs=["quantum"]), "field experiments[0].needs[0]"),
        (lambda d: d["experiments"][1].update(id="d03.e9"), "field experiments[1].id"),
        (lambda d: d["title"].pop("en"), "field title.en"),
        (lambda d: d.update(questions=d["questions"][:5]), "field questions"),
        (lambda d: d["deliverables"][0].update(path="x.py", planned=True), "field deliverables[0]"),
    ],
)
def test_malformed_day_names_file_day_and_field(tmp_path: Path, mutate, expected: str) -> None:
    days, bindings = _copy_tree(tmp_path)
    _edit(days / "d03.yaml", mutate)
    with pytest.raises(CatalogueError) as err:
        load_catalogue(days, bindings)
    assert expected in str(err.value)


def test_binding_to_unknown_experiment_is_rejected(tmp_path: Path) -> None:
    days, bindings = _copy_tree(tmp_path)
    (bindings / "zz_bad.yaml").write_text("d03.e7:\n  runner: workloads.models.experiments:x\n")
    with pytest.raises(CatalogueError, match=r"zz_bad.yaml: day 03: field d03.e7: unknown experiment id"):
        load_catalogue(days, bindings)


def test_runner_that_does_not_exist_is_rejected(tmp_path: Path) -> None:
    days, bindings = _copy_tree(tmp_path)
    (bindings / "zz_bad.yaml").write_text("d90.e5:\n  runner: ailab.runner:no_such_function\n")
    with pytest.raises(CatalogueError, match=r"field d90.e5.runner: module 'ailab.runner' has no top-level function"):
        load_catalogue(days, bindings)


def test_binding_with_unknown_need_and_bad_runner_reference(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.syspath_prepend(str(FIXTURES))
    days, bindings = _copy_tree(tmp_path)
    (bindings / "zz_bad.yaml").write_text("d90.e5:\n  runner: fake_experiments:skip_me\n  needs: [tpu]\n")
    with pytest.raises(CatalogueError, match=r"field d90.e5.needs\[0\]"):
        load_catalogue(days, bindings)
    (bindings / "zz_bad.yaml").write_text("d90.e5:\n  runner: not-a-reference\n")
    with pytest.raises(CatalogueError, match=r"field d90.e5.runner"):
        load_catalogue(days, bindings)


def test_binding_with_an_unknown_quick_service_is_rejected(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.syspath_prepend(str(FIXTURES))
    days, bindings = _copy_tree(tmp_path)
    (bindings / "zz_bad.yaml").write_text("d90.e5:\n  runner: fake_experiments:skip_me\n  quick_services: [grafana]\n")
    with pytest.raises(CatalogueError, match=r"field d90.e5.quick_services\[0\]"):
        load_catalogue(days, bindings)


def test_experiment_bound_twice_is_rejected(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.syspath_prepend(str(FIXTURES))
    days, bindings = _copy_tree(tmp_path)
    (bindings / "zz_a.yaml").write_text("d90.e5:\n  runner: fake_experiments:skip_me\n")
    (bindings / "zz_b.yaml").write_text("d90.e5:\n  runner: fake_experiments:skip_me\n")
    with pytest.raises(CatalogueError, match="already bound in"):
        load_catalogue(days, bindings)


def test_invalid_yaml_names_the_file(tmp_path: Path) -> None:
    days, bindings = _copy_tree(tmp_path)
    (days / "d05.yaml").write_text("day: [5\n")
    with pytest.raises(CatalogueError, match=r"d05.yaml: not valid YAML"):
        load_catalogue(days, bindings)


def test_needs_of_binding_replace_needs_as_written() -> None:
    cat = load_catalogue()
    bound = [e for e in cat.experiments.values() if e.binding]
    for e in bound:
        assert e.effective_needs == list(e.binding.needs)
    unbound = next(e for e in cat.experiments.values() if not e.binding and e.needs)
    assert unbound.effective_needs == unbound.needs
    assert all(isinstance(n, Need) for n in unbound.needs)


def test_every_area_keeps_its_bindings_beside_its_runners() -> None:
    """One way to add an experiment: workloads/<area>/bindings.yaml names runners in workloads/<area>/experiments/."""
    cat = load_catalogue()
    assert binding_files(), "no workloads/<area>/bindings.yaml found"
    for f in binding_files():
        area = f.parent.name
        for exp_id, spec in (yaml.safe_load(f.read_text(encoding="utf-8")) or {}).items():
            assert spec["runner"].startswith(f"workloads.{area}.experiments."), (f, exp_id)
    assert cat.experiments["d53.e1"].binding is not None


@pytest.mark.parametrize(
    ("binding", "expected"),
    [
        ("  params: {report: 5}\n", r"experiment d53.e1: params: field report = 5: "),
        (
            "  params: {reprot: x.json}\n",
            r"experiment d53.e1: params: field reprot: unknown parameter \(allowed: report\)",
        ),
        ("  quick: {report: /nonexistent.json}\n", r"experiment d53.e1: quick: field report = '/nonexistent.json'"),
    ],
)
def test_binding_params_are_validated_against_the_runner_model_at_load(tmp_path: Path, binding, expected) -> None:
    days, bindings = _copy_tree(tmp_path)
    f = bindings / "sched-bindings.yaml"
    f.write_text(f.read_text().replace("  needs: [gpu]\n", "  needs: [gpu]\n" + binding, 1))
    with pytest.raises(CatalogueError, match=r"sched-bindings.yaml: day 53: " + expected):
        load_catalogue(days, bindings)


def test_a_validated_catalogue_is_stamped_and_the_stamp_skips_the_imports(tmp_path, monkeypatch) -> None:
    from ailab.curriculum import loader

    monkeypatch.setenv("AILAB_STATE_DIR", str(tmp_path / "state"))
    (tmp_path / "state").mkdir()  # a state dir that does not exist gets no stamp
    checked: list[str] = []
    real = loader.check_params
    monkeypatch.setattr(loader, "check_params", lambda ref, *a: checked.append(ref) or real(ref, *a))
    loader.load_catalogue()
    assert len(checked) > 100 and (tmp_path / "state" / "cache" / "catalogue-validated").is_file()
    checked.clear()
    loader.load_catalogue()
    assert checked == []  # the same inputs validated before
    monkeypatch.setattr(loader, "fingerprint", lambda *a, **k: "another digest")
    loader.load_catalogue()
    assert len(checked) > 100  # anything changed: validated again


def test_the_fingerprint_follows_sources_bindings_and_days(tmp_path) -> None:
    import os

    from ailab.curriculum.loader import fingerprint

    days, bindings = _copy_tree(tmp_path)
    src = tmp_path / "src"
    (src / "pkg").mkdir(parents=True)
    mod = src / "pkg" / "runner.py"
    mod.write_text("def run(ctx): ...\n")
    files = sorted(bindings.glob("*.yaml"))
    first = fingerprint(days, files, (src,))
    assert fingerprint(days, files, (src,)) == first
    st = mod.stat()
    os.utime(mod, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000))
    touched = fingerprint(days, files, (src,))
    assert touched != first
    files[0].write_text(files[0].read_text() + "# a comment\n")
    assert fingerprint(days, files, (src,)) != touched
    edited = fingerprint(days, files, (src,))
    (days / "d01.yaml").write_text((days / "d01.yaml").read_text() + "\n")
    assert fingerprint(days, files, (src,)) != edited
