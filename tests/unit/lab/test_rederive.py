"""Derived results record which run of each source they re-present; one whose source was measured again is stale,
and `lab rederive` re-derives it for its own host class (an H200 result's derived file too, on a CPU host: nothing is
measured). The committed results have no stale derived result."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ailab.contract.paths import REPO_ROOT
from ailab.curriculum import Binding, Need, load_catalogue
from ailab.results import provenance
from ailab.results.derived import order, stale
from ailab.results.store import result_path
from ailab.runner import run_one

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures"


def bound(exp_id: str, runner: str, needs: list[Need] | None = None):
    """A catalogue experiment bound to one of the fake runners (tests/fixtures/fake_experiments.py)."""
    exp = load_catalogue(check_runners=False).experiments[exp_id]
    return exp.model_copy(update={"binding": Binding(runner=f"fake_experiments:{runner}", needs=needs or [])})


@pytest.fixture(autouse=True)
def _fake_runners(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.syspath_prepend(str(FIXTURES))


def _store_source(host_class: str, ended: str) -> None:
    """A measured d03.e1 result of `host_class` (written by the real runner on this host, then re-labelled)."""
    src = json.loads(run_one(bound("d03.e1", "ok"), "cpu", False, provenance.collect()).path.read_text())
    src.update(host_class=host_class)
    src["provenance"]["ended_utc"] = ended
    path = result_path("d03.e1", host_class)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(src))
    if host_class != "cpu":
        result_path("d03.e1", "cpu").unlink()


def test_derived_result_records_the_source_run_and_goes_stale_when_it_is_re_measured(lab_tmp: Path) -> None:
    prov = provenance.collect()
    _store_source("cpu", "2026-12-01T10:00:00+00:00")
    der = json.loads(run_one(bound("d03.e4", "derived"), "cpu", False, prov).path.read_text())
    assert der["derived_sources"] == {"d03.e1": "2026-12-01T10:00:00+00:00"}
    assert stale() == []
    _store_source("cpu", "2026-12-02T10:00:00+00:00")  # d03.e1 measured again
    (s,) = stale()
    assert (s.experiment_id, s.host_class, s.source) == ("d03.e4", "cpu", "d03.e1")
    assert "2026-12-01T10:00:00" in s.why and "2026-12-02T10:00:00" in s.why


def test_legacy_derived_result_is_judged_by_time(lab_tmp: Path) -> None:
    _store_source("cpu", "2026-12-01T10:00:00+00:00")
    path = run_one(bound("d03.e4", "derived"), "cpu", False, provenance.collect()).path
    der = json.loads(path.read_text())
    del der["derived_sources"]
    der["provenance"]["ended_utc"] = "2026-12-01T09:00:00+00:00"  # derived before the source's run ended
    path.write_text(json.dumps(der))
    assert [s.experiment_id for s in stale()] == ["d03.e4"]
    der["relabelled"] = {"date": "2026-12-01", "by": "test", "why": "rows cut from d03.e1's own run"}
    path.write_text(json.dumps(der))  # labelled after the fact: its rows came from the source's own (cached) run
    assert stale() == []


def test_rederive_for_a_gpu_host_class_on_this_host(lab_tmp: Path) -> None:
    """The H200 source is a stored file (no GPU here); re-deriving needs none and writes the h200 derived file."""
    _store_source("h200", "2026-12-02T04:56:59+00:00")
    exp = bound("d03.e4", "derived", needs=[])
    o = run_one(exp, "cuda", False, provenance.collect(), derive_for="h200")
    assert o.status == "ok" and o.path == result_path("d03.e4", "h200")
    der = json.loads(o.path.read_text())
    assert der["host_class"] == "h200" and der["derived_sources"] == {"d03.e1": "2026-12-02T04:56:59+00:00"}
    assert der["rederived_on"] == provenance.collect()["host"]
    from ailab.report.render import _provenance_line
    from ailab.results.store import load_result

    line = _provenance_line(load_result(o.path))
    assert "re-derived from the stored h200 results of d03.e1" in line and "nothing measured" in line


def test_rederive_refuses_a_runner_that_measures(lab_tmp: Path) -> None:
    """A runner that returns a non-derived output would be a CPU measurement filed as an H200 one: refused, and
    nothing is written under h200."""
    o = run_one(bound("d03.e4", "ok"), "cuda", False, provenance.collect(), derive_for="h200")
    assert o.status == "failed" and "not derived" in o.reason
    assert not result_path("d03.e4", "h200").exists()


def test_rederive_without_the_source_writes_nothing_for_that_host_class(lab_tmp: Path) -> None:
    o = run_one(bound("d03.e4", "derived"), "cuda", False, provenance.collect(), derive_for="h200")
    assert o.status == "skipped" and "no measured result for h200" in o.reason
    assert not result_path("d03.e4", "h200").exists()


def test_order_puts_sources_first(lab_tmp: Path) -> None:
    _store_source("cpu", "2026-12-01T10:00:00+00:00")
    prov = provenance.collect()
    run_one(bound("d03.e4", "derived"), "cpu", False, prov)
    assert order({("d03.e4", "cpu"), ("d03.e1", "cpu")}) == [("d03.e1", "cpu"), ("d03.e4", "cpu")]


def test_committed_derived_results_show_their_sources_stored_runs() -> None:
    found = stale(REPO_ROOT / "reports" / "results")
    assert not found, "stale derived results (run `lab rederive`): " + "; ".join(
        f"{s.experiment_id} ({s.host_class}): {s.why}" for s in found
    )
