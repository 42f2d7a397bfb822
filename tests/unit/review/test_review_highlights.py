"""Highlight candidates: every number a highlight writes is a number of the result file it links to (checked on the
unit fixtures and on every committed highlight result), picked by rule, never computed from several values."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from ailab.contract import Context, Skip
from ailab.contract.paths import REPO_ROOT
from workloads.review.experiments.highlights import HighlightParams, candidates, highlights, number_text

NUM = re.compile(r"(?<![\w.])-?\d+(?:\.\d+)?(?:e[-+]?\d+)?")
LINK = re.compile(r"\]\((\.\./results/[^)]+)\)")
HIGHLIGHT_IDS = "d21.e5 d28.e5 d35.e5 d42.e5 d49.e5 d56.e5 d63.e5 d70.e5 d77.e5 d84.e5 d85.e4 d86.e4 d89.e1 d90.e1"

LAT = {
    "name": "latency",
    "columns": [{"name": "batch", "unit": ""}, {"name": "p99", "unit": "ms"}, {"name": "throughput", "unit": "req/s"}],
    "rows": [[1, 2.5123456, 400.0], [8, 4.0, 1234.567]],
}
VERDICT = {
    "name": "verdict",
    "columns": [
        {"name": "check", "unit": ""},
        {"name": "value", "unit": ""},
        {"name": "threshold", "unit": ""},
        {"name": "result", "unit": ""},
    ],
    "rows": [["error rate", 0.0, 0.001, "PASS"], ["drift", 3.0, 2.0, "FAIL"]],
}
TARGET = {"name": "t", "columns": [{"name": "target", "unit": "req/s"}], "rows": [[99999.0]]}
STORED: dict[str, dict[str, Any]] = {
    "d15.e1": {
        "id": "d15.e1",
        "status": "ok",
        "summary": "Batch sweep.",
        "tables": [LAT, TARGET],
        "substitute": {"used": "ORT", "instead_of": "TensorRT", "why": "no GPU"},
    },
    "d16.e1": {"id": "d16.e1", "status": "ok", "summary": "Soak.", "tables": [VERDICT]},
    "d16.e2": {"id": "d16.e2", "status": "ok", "summary": "Derived.", "tables": [LAT], "derived_from": ["d15.e1"]},
}


def numbers_in(obj: Any) -> set[str]:
    """Every number a result holds, as the highlight would print it and as its text spells it."""
    out: set[str] = set()
    if isinstance(obj, dict):
        for v in obj.values():
            out |= numbers_in(v)
    elif isinstance(obj, list):
        for v in obj:
            out |= numbers_in(v)
    elif isinstance(obj, bool):
        pass
    elif isinstance(obj, int | float):
        out |= {number_text(obj), str(obj)}
    elif isinstance(obj, str):
        out |= set(NUM.findall(obj))
    return out


def unsupported(sentence: str, result: dict[str, Any]) -> list[str]:
    text = LINK.sub("]", sentence)  # the link's own path is not a claim
    held = numbers_in(result)
    return [n for n in NUM.findall(text) if n not in held]


def _ctx(tmp_path: Path) -> Context:
    return Context(experiment_id="d21.e5", device="cpu", quick=False, workdir=tmp_path, result_of=STORED.get)


def test_picks_highest_throughput_first_and_cites_only_stored_numbers(tmp_path: Path) -> None:
    out = highlights(_ctx(tmp_path), HighlightParams(weeks=[3], count=1))
    top, more = out.tables
    assert top.rows[0][1] == "d15.e1" and "highest throughput 1235 req/s" in top.rows[0][2]
    assert "(../results/d15/d15.e1.cpu.json)" in top.rows[0][2]
    assert "[substitute for TensorRT]" in top.rows[0][2]
    assert "99999" not in json.dumps([t.rows for t in out.tables])  # a target is not a measurement
    assert [r[1] for r in more.rows] == ["d16.e1"]  # the derived d16.e2 is never cited
    for t in out.tables:
        for _, exp_id, sentence in t.rows:
            assert unsupported(sentence, STORED[exp_id]) == []
    assert out.derived_from == ["d15.e1", "d16.e1"]


def test_verdicts_cite_only_pass_rows(tmp_path: Path) -> None:
    cands = [s for _, s in candidates("d16.e1", STORED["d16.e1"], "cpu")]
    assert len(cands) == 1 and "error rate" in cands[0] and "PASS" in cands[0] and "drift" not in cands[0]


def test_the_check_catches_a_number_the_result_lacks() -> None:
    assert unsupported("d15.e1: p99 2.512 ms and 7.77 ms", STORED["d15.e1"]) == ["7.77"]


def test_latency_is_the_lowest_row(tmp_path: Path) -> None:
    only_latency = {
        "d15.e1": {
            **STORED["d15.e1"],
            "tables": [{**LAT, "columns": LAT["columns"][:2], "rows": [r[:2] for r in LAT["rows"]]}],
        }
    }
    ctx = Context(experiment_id="d21.e5", device="cpu", quick=False, workdir=Path("."), result_of=only_latency.get)
    out = highlights(ctx, HighlightParams(weeks=[3]))
    assert "lowest p99 2.512 ms (batch 1)" in out.tables[0].rows[0][2]


def test_no_measured_result_is_a_skip(tmp_path: Path) -> None:
    ctx = Context(experiment_id="d21.e5", device="cpu", quick=False, workdir=tmp_path)
    with pytest.raises(Skip, match="no measured result of week 3"):
        highlights(ctx, HighlightParams(weeks=[3]))


@pytest.mark.parametrize("exp_id", HIGHLIGHT_IDS.split())
def test_every_committed_highlight_number_is_in_its_linked_result(exp_id: str) -> None:
    day = exp_id.split(".")[0]
    files = sorted((REPO_ROOT / "reports" / "results" / day).glob(f"{exp_id}.*.json"))
    if not files:
        pytest.skip(f"{exp_id} has no committed result yet (run `lab run {exp_id}`)")
    for f in files:
        rec = json.loads(f.read_text(encoding="utf-8"))
        if rec["status"] != "ok":
            continue
        week_dir = REPO_ROOT / "reports" / "week01"  # any reports/weekNN/: links are relative to a day report
        sentences = [row[2] for t in rec["tables"] for row in t["rows"]]
        assert sentences
        for s in sentences:
            (link,) = LINK.findall(s)
            target = (week_dir / link).resolve()
            assert target.is_file(), f"{f.name}: {link} does not resolve"
            missing = unsupported(s, json.loads(target.read_text(encoding="utf-8")))
            assert missing == [], f"{s}\n{missing} not in {link}: stale or invented; re-run `lab run {exp_id}`"
