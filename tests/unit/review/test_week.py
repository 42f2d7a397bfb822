"""`lab review`: a week's review says what each result is and why the rest is not measured, from the files alone."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from ailab.cli import app
from ailab.curriculum import catalogue
from ailab.review import plots
from ailab.review.week import ReviewError, review_week, week_number


def _write(root: Path, exp_id: str, host: str, **fields) -> None:
    day = root / exp_id[:3]
    day.mkdir(parents=True, exist_ok=True)
    rec = {"schema": 1, "id": exp_id, "host_class": host, "status": "ok", **fields}
    (day / f"{exp_id}.{host}.json").write_text(json.dumps(rec))


def _series(lines: dict[str, list[list[float]]]) -> dict:
    return {
        "name": "bandwidth vs N",
        "x": {"name": "N", "unit": "elements"},
        "y": {"name": "bw", "unit": "GB/s"},
        "kind": "line",
        "lines": lines,
    }


@pytest.fixture()
def results(tmp_path: Path) -> Path:
    root = tmp_path / "results"
    table = {"name": "copy", "columns": [{"name": "N", "unit": ""}], "rows": [[1]]}
    _write(
        root,
        "d08.e1",
        "h100",
        tables=[table],
        series=[_series({"a": [[1, 2.0], [2, 3.0]], "only-h100": [[1, 1]]})],
        notes=["target: MET"],
    )
    _write(root, "d08.e1", "h200", tables=[table], series=[_series({"a": [[1, 2.5], [2, 3.5]]})], notes=["target: MET"])
    _write(root, "d08.e2", "cpu", substitute={"instead_of": "cuda-memcheck", "used": "a bounds check", "why": "no GPU"})
    _write(root, "d08.e3", "cpu", derived_from=["d08.e1"], notes=["same rows as d08.e1"])
    _write(root, "d08.e4", "cpu", status="skipped", reason="needs a GPU: no CUDA device here")
    _write(root, "d01.e1", "cpu")
    return root


def test_review_names_kinds_hosts_notes_and_why_the_rest_is_not_measured(tmp_path: Path, results: Path) -> None:
    text = review_week(2, catalogue(), root=tmp_path / "reports", results_root=results).read_text()
    row = next(line for line in text.splitlines() if line.startswith("| d08.e1 |"))
    assert "| measured on GPU | h100, h200 | copy | bandwidth vs N |" in row
    assert "- d08.e1 (h100, h200): target: MET" in text  # one note stored by both hosts is shown once
    assert "substitute: a bounds check instead of cuda-memcheck" in text
    assert "derived from d08.e1" in text and "- d08.e3 (cpu): same rows as d08.e1" in text
    skipped = next(line for line in text.splitlines() if line.startswith("| d08.e4 |"))
    assert "skipped on cpu: needs a GPU: no CUDA device here" in skipped
    assert "| measured on GPU | 1 |" in text and "| substitute | 1 |" in text and "| derived | 1 |" in text
    # progress through week 2: week 1 has d01.e1 (CPU); week 2 one GPU-measured experiment, 1 substitute, 1 derived
    assert "| 01 | 0 | 1 | 0 | 0 | 0 | 1 | 1 |" in text  # GPU, CPU, substitute, derived, generated, cumulatives
    assert "| 02 | 1 | 0 | 1 | 1 | 0 | 2 | 4 |" in text
    out = tmp_path / "reports" / "week02" / "plots"
    assert (out / "review-progress.png").stat().st_size > 10_000
    assert (out / "review-d08.e1-bandwidth-vs-n.png").stat().st_size > 10_000  # h100 vs h200: a comparison curve


def test_a_series_of_one_host_class_draws_no_comparison(tmp_path: Path) -> None:
    root = tmp_path / "results"
    _write(root, "d08.e1", "h100", series=[_series({"a": [[1, 2.0]]})])
    text = review_week(2, catalogue(), root=tmp_path / "reports", results_root=root, draw=False).read_text()
    assert "## Comparison curves" not in text


def test_target_verdicts_are_listed_with_their_result_file(tmp_path: Path) -> None:
    root = tmp_path / "results"
    _write(root, "d09.e1", "h200", notes=["Target x >= 2: NOT MET (1.5).", "warm-up 10 calls"])
    _write(root, "d09.e2", "cpu", notes=["metrics are scraped"])  # 'met' inside a word is no verdict
    text = review_week(2, catalogue(), root=tmp_path / "reports", results_root=root, draw=False).read_text()
    section = text.split("## Targets met and not met", 1)[1].split("##", 1)[0]
    assert "- [d09.e1 (h200)](../results/d09/d09.e1.h200.json): Target x >= 2: NOT MET (1.5)." in section
    assert "warm-up" not in section and "d09.e2" not in section


def test_unreadable_result_files_are_named_not_fatal(tmp_path: Path) -> None:
    root = tmp_path / "results"
    (root / "d08").mkdir(parents=True)
    (root / "d08" / "d08.e1.cpu.json").write_text("{truncated")
    text = review_week(2, catalogue(), root=tmp_path / "reports", results_root=root, draw=False).read_text()
    assert "d08.e1.cpu.json`: not valid JSON" in text


@pytest.mark.parametrize("bad", ["week14", "week0", "monday", "14"])
def test_an_unknown_week_is_refused_naming_it(bad: str) -> None:
    with pytest.raises(ReviewError, match=f"week '{bad}': unknown week \\(allowed: week01 … week13\\)"):
        week_number(bad, catalogue())
    res = CliRunner().invoke(app, ["review", bad])
    assert res.exit_code == 2 and "unknown week" in res.output


@pytest.mark.parametrize("target", ["week05", "5", "05", 5])
def test_week_names(target) -> None:
    assert week_number(target, catalogue()) == 5


def test_comparison_lines_never_share_colour_marker_and_style_and_panels_stay_small() -> None:
    labels = [f"kernel {i}" for i in range(20)]
    by_host = {h: _series({label: [[1, 1.0]] for label in labels}) for h in ("h100", "h200", "cpu")}
    panels = plots.comparison_panels(by_host)
    assert [len(p) for p in panels] == [8, 8, 4]
    for panel in panels:
        style = plots.styles(panel, list(by_host))
        assert len(set(style.values())) == len(style)
    with pytest.raises(ValueError, match="5 host classes: at most 4"):
        plots.styles(["a"], ["a", "b", "c", "d", "e"])


def test_comparison_legend_sits_outside_the_axes(tmp_path: Path, monkeypatch) -> None:
    seen = []
    monkeypatch.setattr(plots.plt, "close", lambda fig: seen.append(fig))
    by_host = {h: _series({"a": [[1, 1.0], [2, 2.0]], "b": [[1, 2.0], [2, 1.0]]}) for h in ("h100", "h200")}
    plots.plot_comparison(by_host, "t", tmp_path / "c.png")
    (fig,) = seen
    fig.canvas.draw()
    for ax in fig.axes:
        legend, frame = ax.get_legend().get_window_extent(), ax.get_window_extent()
        assert legend.x0 >= frame.x1  # entirely to the right of the plotting area
        assert ax.get_xlabel() == "N (elements)" and ax.get_ylabel() == "bw (GB/s)"
