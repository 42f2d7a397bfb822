"""The static site builder on a small repository: .md links become .html, linked files and images are copied,
a link to nothing is reported (not dropped), and the output folder can never be the repository or a source."""

from __future__ import annotations

from pathlib import Path

import pytest

from ailab.site import SiteError, build


def _repo(tmp_path: Path) -> Path:
    repo = tmp_path / "repo"
    (repo / "reports" / "week01" / "plots").mkdir(parents=True)
    (repo / "reports" / "results" / "d01").mkdir(parents=True)
    (repo / "docs").mkdir()
    (repo / "README.md").write_text("# Lab\n\nSee [the guide](docs/guide.md#start) and [docs](docs).\n")
    (repo / "docs" / "README.md").write_text("# Docs\n")
    (repo / "docs" / "guide.md").write_text("# Guide\n\n[week](../reports/week01/d01.md) [gone](missing.md)\n")
    (repo / "reports" / "week01" / "d01.md").write_text(
        "# Day 1\n\n| a | b |\n|---|---|\n| 1 | [r](../results/d01/d01.e1.cpu.json) |\n\n![p](plots/p.png)\n"
    )
    (repo / "reports" / "week01" / "plots" / "p.png").write_bytes(b"\x89PNG\r\n\x1a\n")
    (repo / "reports" / "results" / "d01" / "d01.e1.cpu.json").write_text("{}")
    return repo


def test_links_are_rewritten_copied_or_reported(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import ailab.site as site

    monkeypatch.setattr(site, "_coverage_body", lambda repo: "<h1>Coverage</h1>")
    repo, out = _repo(tmp_path), tmp_path / "site"
    report = build(out, repo)
    home = (out / "README.html").read_text()
    assert 'href="docs/guide.html#start"' in home and 'href="docs/README.html"' in home
    day = (out / "reports" / "week01" / "d01.html").read_text()
    assert "<table>" in day and 'src="plots/p.png"' in day and 'href="../../style.css"' in day
    assert (out / "reports" / "week01" / "plots" / "p.png").is_file()
    assert (out / "reports" / "results" / "d01" / "d01.e1.cpu.json").is_file()
    assert report.broken == [("docs/guide.md", "missing.md")]
    index = (out / "index.html").read_text()
    assert 'href="reports/week01/d01.html"' in index and (out / "gallery.html").is_file()


def test_output_folder_may_not_be_the_repository_or_a_source(tmp_path: Path) -> None:
    repo = _repo(tmp_path)
    for bad in (repo, repo / "docs", repo / "reports"):
        with pytest.raises(SiteError, match="output folder"):
            build(bad, repo)
    assert (repo / "docs" / "guide.md").is_file()


def test_lab_site_cli_reports_broken_links_and_strict_fails_on_them(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from ailab.cli import app
    from ailab.site import REPO_ROOT

    r = CliRunner().invoke(app, ["site", "--out", str(tmp_path / "s")])
    assert r.exit_code == 0, r.output
    assert (tmp_path / "s" / "index.html").is_file() and (tmp_path / "s" / "coverage.html").is_file()
    strict = CliRunner().invoke(app, ["site", "--out", str(tmp_path / "s"), "--strict"])
    assert strict.exit_code == (1 if "broken link" in r.output else 0)
    bad = CliRunner().invoke(app, ["site", "--out", str(REPO_ROOT / "docs")])
    assert bad.exit_code == 2 and "output folder" in bad.output


def test_the_coverage_page_has_a_column_per_kind_including_generated() -> None:
    import ailab.site as site
    from ailab.contract.paths import REPO_ROOT
    from ailab.results.coverage import KINDS, LABELS

    body = site._coverage_body(REPO_ROOT)
    assert all(f"<th>{LABELS[k]}</th>" in body for k in KINDS) and "<th>generated</th>" in body
    assert "neither a measurement nor a person's writing" in body
