"""The ensemble runners called as `lab run` calls them (a Context with the real local platform, typed parameters),
on a real tritonserver: the check runner must find every answer equal to numpy's. Nothing is mocked."""

from __future__ import annotations

from pathlib import Path

import pytest

from ailab.contract import Context
from ailab.runner import local_platform
from workloads.ensembles.experiments.pipeline import PipelineParams, ensemble_pipeline

pytestmark = pytest.mark.integration


def test_pipeline_runner_checks_every_answer_against_numpy(tmp_path: Path):
    ctx = Context("d17.e1", "cpu", True, tmp_path, platform=local_platform)
    out = ensemble_pipeline(ctx, PipelineParams(images=20, batch=6))
    tables = {t.name: t for t in out.tables}
    answers = {r[0]: r for r in tables["answers"].rows}
    assert sorted(answers) == ["fused", "pipeline", "pipeline_post"]
    for model, images, requests, diff, agree, errors in answers.values():
        assert (images, requests, errors) == (20, 4, 0), model
        assert diff < 1e-5 and agree == 100.0, model
    runs = {r[0]: r[1] for r in tables["executions"].rows}
    # 4 requests to each ensemble: the shared steps ran for both, the top-k step only for pipeline_post
    assert runs["pipeline"] == runs["pipeline_post"] == runs["topk"] == 4
    assert runs["normalize"] == runs["mlp"] == runs["softmax"] == 8
    assert [r[2] for r in tables["ensemble_scheduling"].rows if r[0] == "pipeline"] == ["normalize", "mlp", "softmax"]


def test_step_metrics_draws_the_dashboard_panels_from_the_live_prometheus(tmp_path: Path):
    """d17.e5 (view grafana): the two per-step panels rendered from the Prometheus that scraped the run, as PNG
    artifacts with data for the ensemble and its steps."""
    from workloads.ensembles.experiments.step_times import LATENCY_PANEL, PANEL, StepMetricsParams, step_metrics

    ctx = Context("d17.e5", "cpu", True, tmp_path, platform=local_platform)
    # the quick runs' settle: wait for the next scrape after the load instead of two fixed scrape intervals
    out = step_metrics(ctx, StepMetricsParams(duration_s=3.0, view="grafana", settle="next_scrape"))
    assert "Every step's panel query returned data." in out.notes
    pics = {r[0]: r for r in next(t for t in out.tables if t.name == "panel_pictures").rows}
    assert sorted(pics) == sorted([LATENCY_PANEL, PANEL])
    for title, series, points, _unit, error in pics.values():
        assert error == "none" and series >= 5 and points > 0, title  # the ensemble and its four steps
    assert sorted(out.artifacts) == sorted(f"Grafana panel: {t}" for t in (LATENCY_PANEL, PANEL))
    for path in out.artifacts.values():
        png = Path(path)
        assert png.parent == tmp_path / "panels-quick"  # a quick run never draws over the full run's pictures
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 5000
