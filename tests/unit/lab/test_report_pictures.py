"""Picture artifacts (a dashboard panel's PNG, a diagram's SVG) are copied beside the day report and embedded with a
caption; a missing one is named in the report, never a crash; a re-render gives the same files."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest

from ailab.curriculum import Binding, catalogue
from ailab.report import report_day
from ailab.report.pictures import picture_artifacts
from ailab.results import provenance
from ailab.runner import run_one

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures"
PNG = b"\x89PNG\r\n\x1a\n" + b"panel pixels" * 20  # the report copies bytes; it never decodes them


@pytest.fixture
def result_with(lab_tmp: Path, monkeypatch: pytest.MonkeyPatch):
    """Store a real d03.e1 result (fake runner), then give it the artifacts a runner would have named."""
    monkeypatch.syspath_prepend(str(FIXTURES))
    exp = catalogue().experiments["d03.e1"]
    exp = exp.model_copy(update={"binding": Binding(runner="fake_experiments:ok")})
    path = run_one(exp, "cpu", False, provenance.collect()).path
    assert path is not None

    def add(artifacts: dict[str, str]) -> Path:
        data = json.loads(path.read_text())
        data["artifacts"] = artifacts
        path.write_text(json.dumps(data))
        return lab_tmp

    return add


def _rendered(lab_tmp: Path) -> tuple[str, Path]:
    md_path = report_day(catalogue().day(3))
    return md_path.read_text(), lab_tmp / "reports" / "week01" / "plots"


def test_png_artifact_is_copied_and_embedded_with_a_caption(result_with, tmp_path: Path) -> None:
    src = tmp_path / "work" / "panel.png"
    src.parent.mkdir()
    src.write_bytes(PNG)
    os.utime(src, (time.time() - 60, time.time() - 60))  # written during the run, before it ended
    lab = result_with({"latency panel": str(src), "model file": str(tmp_path / "work" / "model.onnx")})
    md, plots = _rendered(lab)
    name = "d03.e1-cpu-latency-panel.png"
    assert f"](plots/{name})" in md and "_latency panel (`" in md
    assert (plots / name).read_bytes() == PNG
    assert "- artifact model file: `" in md  # not a picture: listed as before
    again, _ = _rendered(lab)
    assert again == md and (plots / name).read_bytes() == PNG  # re-render-safe


def test_directory_of_pictures_embeds_each_in_name_order(result_with, tmp_path: Path) -> None:
    snap = tmp_path / "snapshot"
    snap.mkdir()
    for n in ("02-b.svg", "01-a.png", "index.json"):
        (snap / n).write_bytes(PNG)
        os.utime(snap / n, (time.time() - 60, time.time() - 60))
    md, plots = _rendered(result_with({"snapshot": str(snap)}))
    a, b = "d03.e1-cpu-snapshot--01-a.png", "d03.e1-cpu-snapshot--02-b.svg"
    assert md.index(f"(plots/{a})") < md.index(f"(plots/{b})")
    assert (plots / a).is_file() and (plots / b).is_file()
    assert "index" not in " ".join(p.name for p in plots.iterdir())


def test_missing_picture_is_named_not_a_crash(result_with, tmp_path: Path) -> None:
    gone = tmp_path / "never-written.png"
    md, plots = _rendered(result_with({"latency panel": str(gone)}))
    assert f"picture artifact latency panel: `{gone}` was not found" in md
    assert not (plots / "d03.e1-cpu-latency-panel.png").exists()


def test_scratch_picture_rewritten_after_the_result_is_not_shown_as_its_own(lab_tmp: Path) -> None:
    src = lab_tmp / "state" / "work" / "d03.e1" / "panel.png"  # .lab/work: a later (quick) run draws here again
    src.parent.mkdir(parents=True)
    src.write_bytes(PNG)  # mtime now: later than a result recorded long ago
    out = lab_tmp / "week01"
    md, others = picture_artifacts(
        {"panel": str(src)}, "d03.e1-cpu", out, recorded_utc="2000-01-01T00:00:00+00:00", committed_dir=lab_tmp / "c"
    )
    assert others == {} and "was rewritten by a later run" in "\n".join(md)
    assert not (out / "plots").exists()


def test_committed_picture_is_shown_whatever_its_mtime(lab_tmp: Path) -> None:
    """A picture kept in the repository (docs/diagrams/) is versioned by git; a checkout gives it a new mtime."""
    src = lab_tmp / "docs" / "diagram.svg"
    src.parent.mkdir()
    src.write_bytes(b"<svg/>")
    out = lab_tmp / "week01"
    md, _ = picture_artifacts(
        {"diagram": str(src)}, "d03.e1-cpu", out, recorded_utc="2000-01-01T00:00:00+00:00", committed_dir=lab_tmp / "c"
    )
    assert "](plots/d03.e1-cpu-diagram.svg)" in "\n".join(md)
    assert (out / "plots" / "d03.e1-cpu-diagram.svg").read_bytes() == b"<svg/>"


def test_committed_copy_stands_in_for_a_missing_source(tmp_path: Path) -> None:
    """A checkout without .lab/ renders the same report from the copies committed beside it."""
    committed = tmp_path / "committed"
    committed.mkdir()
    (committed / "d03.e1-cpu-snap--01-a.png").write_bytes(PNG)
    (committed / "d03.e1-cpu-panel.png").write_bytes(PNG)
    arts = {"snap": str(tmp_path / "gone-dir"), "panel": str(tmp_path / "gone.png")}
    out = tmp_path / "week01"
    md, others = picture_artifacts(arts, "d03.e1-cpu", out, committed_dir=committed)
    text = "\n".join(md)
    assert others == {} and "(plots/d03.e1-cpu-snap--01-a.png)" in text and "(plots/d03.e1-cpu-panel.png)" in text
    assert (out / "plots" / "d03.e1-cpu-panel.png").read_bytes() == PNG
    assert "missing" not in text and "not found" not in text


def test_result_recorded_in_another_checkout_renders_the_same_text(result_with, tmp_path: Path) -> None:
    """A committed result names its scratch pictures by the absolute path of the clone that ran it; a fresh clone
    elsewhere (CI) renders the same report text, from the committed copies, as the clone that ran it."""
    pic = ".lab/work/d03.e1/panels/01-latency.png"
    here = result_with({"panel": str(Path("/work/main") / pic), "model": "/elsewhere/clone/.lab/work/m.onnx"})
    md_a, _ = _rendered(here)
    result_with({"panel": str(Path("/check/other/clone") / pic), "model": "/check/other/clone/.lab/work/m.onnx"})
    md_b, _ = _rendered(here)
    assert md_a == md_b
    assert f"`{pic}`" in md_a and "- artifact model: `.lab/work/m.onnx`" in md_a
    assert "/work/main" not in md_a and "/check/other" not in md_b


def test_runner_records_artifacts_inside_the_repository_relative_to_it() -> None:
    from ailab.contract.paths import REPO_ROOT, repo_relative

    assert repo_relative(str(REPO_ROOT / ".lab" / "work" / "x.png")) == ".lab/work/x.png"
    assert repo_relative("/tmp/outside.png") == "/tmp/outside.png"
    assert repo_relative("docs/diagrams/a.png") == "docs/diagrams/a.png"


def test_plots_with_more_lines_than_colours_keep_every_line_distinct(tmp_path):
    """22 series (d11.e1's GEMM plot has that many): past the 10 colours of the cycle, each further round gets its own
    line style and marker, so no two lines in the picture look the same; up to 10 lines keep matplotlib's defaults."""
    from ailab.report.plots import line_style, plot_series

    n = 22
    styles = [line_style(i, n) for i in range(n)]
    looks = {(s["color"], s["linestyle"], s["marker"]) for s in styles}
    assert len(looks) == n
    assert all(line_style(i, 10) == {} for i in range(10))
    series = {
        "x": {"name": "N", "unit": ""},
        "y": {"name": "throughput", "unit": "TFLOP/s"},
        "lines": {f"kernel {i}": [[1, i + 1], [2, i + 2]] for i in range(n)},
    }
    out = plot_series(series, "many lines", tmp_path / "many.png")
    assert out.stat().st_size > 0


def test_log_x_axis_reads_in_powers_of_two_only_when_every_x_is_one(tmp_path):
    """Sizes and batches (1, 2, 4 ... 1024) keep base-2 ticks; replays 1, 10, 100, 1000 (d37.e4) get decades."""
    import matplotlib.pyplot as plt

    from ailab.report.plots import label_axes, log_base

    assert log_base([1, 2, 4, 1024, 4096.0]) == 2
    assert log_base([1, 10, 100, 1000]) == 10
    assert log_base([0, "fp16", 3]) == 10
    for xs, base in (([1, 16, 256], 2), ([1, 10, 100], 10)):
        fig, ax = plt.subplots()
        label_axes(ax, {"x": {"name": "R"}, "y": {"name": "s"}, "log_x": True, "lines": {"a": [[x, 1] for x in xs]}})
        assert ax.xaxis.get_major_locator()._base == base
        plt.close(fig)
