"""The interview bank (every catalogue question, linked by checkable rules; docs/interview-bank.md fresh) and
`lab quiz` driven with scripted answers: seeded draws, evidence shown, answers kept, bad input refused."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from ailab.cli import app
from ailab.curriculum import catalogue
from ailab.review import interview

runner = CliRunner()


def test_bank_holds_every_question_of_the_catalogue_once() -> None:
    cat = catalogue()
    qs = interview.bank(cat)
    expected = sum(len(d.questions) for w in cat.weeks for d in cat.week(w))
    assert len(qs) == expected and len({q.key for q in qs}) == expected
    for q in qs:
        day = q.key.split(".")[0]
        assert [link.experiment for link in q.links[:5]] == [f"{day}.e{k}" for k in range(1, 6)]
        others = q.links[5:]
        assert len(others) <= interview.MAX_RELATED
        for link in others:  # a related experiment shares a term of the question, named in `why`
            term = link.why.removeprefix("shares '").removesuffix("'")
            assert term in interview.terms(q.text) and term in interview.terms(link.summary + " " + _text(link))


def _text(link: interview.Link) -> str:
    return catalogue().experiments[link.experiment].text


def test_technical_terms_only_and_generic_words_never_link() -> None:
    assert interview.terms("NCCL 与 Triton 的 runtime 和 so 文件", technical_only=True) == {"nccl", "triton"}
    assert interview.terms("instance_group 与 fp16", technical_only=True) == {"instance_group", "fp16"}


def test_interview_bank_document_is_fresh() -> None:
    assert not interview.stale(catalogue()), "docs/interview-bank.md is stale: run `lab quiz --write-bank`"
    assert runner.invoke(app, ["quiz", "--check-bank"]).exit_code == 0


def test_quiz_draws_seeded_questions_shows_evidence_and_keeps_answers(tmp_path: Path) -> None:
    args = ["quiz", "-n", "2", "--seed", "11", "--week", "3", "--answers-dir", str(tmp_path)]
    first = runner.invoke(app, args, input="the queue grows\n\n")
    assert first.exit_code == 0, first.output
    assert "evidence" in first.output and "same day" in first.output
    (kept,) = tmp_path.glob("*-seed11.json")
    rec = json.loads(kept.read_text(encoding="utf-8"))
    assert [a["answer"] for a in rec["answers"]] == ["the queue grows", ""]
    assert all(a["key"].startswith(("d15", "d16", "d17", "d18", "d19", "d20", "d21")) for a in rec["answers"])
    assert all(
        len(a["evidence"]) >= 5 and a["evidence"][0]["report"].startswith("reports/week03/") for a in rec["answers"]
    )
    again = runner.invoke(app, [*args[:-1], str(tmp_path / "again")], input="x\ny\n")
    rec2 = json.loads(next((tmp_path / "again").glob("*.json")).read_text(encoding="utf-8"))
    assert again.exit_code == 0 and [a["key"] for a in rec2["answers"]] == [a["key"] for a in rec["answers"]]


def test_quiz_refuses_bad_count_and_week_before_writing(tmp_path: Path) -> None:
    r = runner.invoke(app, ["quiz", "-n", "0", "--answers-dir", str(tmp_path)])
    assert r.exit_code == 2 and "--count 0: allowed 1-540" in r.output
    r = runner.invoke(app, ["quiz", "--week", "14", "--answers-dir", str(tmp_path)])
    assert r.exit_code == 2 and "--week 14: allowed one of 1-13" in r.output
    assert not list(tmp_path.iterdir())
