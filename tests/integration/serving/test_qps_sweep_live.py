"""d07.e1's runner against a real tritonserver (started through the context's local platform), small and fast.

Timing is never asserted: whether a step breaches depends on the host. What is checked is that the runner follows
the sweep plan (listed targets, then growth, re-measuring a breaching step) and that its note agrees with its rows.
"""

from __future__ import annotations

import re

import pytest

from workloads.serving.experiments.qps_sweep import QpsSweepParams, qps_sweep

pytestmark = pytest.mark.integration


def test_the_sweep_follows_its_plan_and_its_note_agrees_with_the_rows(tmp_path, make_context):
    p = QpsSweepParams(qps=[20.0, 40.0], duration_s=1.0, growth=2.0, max_qps=160.0, max_steps=4)
    out = qps_sweep(make_context("d07.e1", tmp_path), p)
    (t,) = out.tables
    col = {c.name: i for i, c in enumerate(t.columns)}
    targets = [r[col["target"]] for r in t.rows]
    distinct = list(dict.fromkeys(targets))
    assert distinct == [20.0, 40.0, 80.0, 160.0][: len(distinct)]  # listed, then x2 up to max_qps
    for i, r in enumerate(t.rows):
        step = r[col["step"]]
        assert step.startswith("re-measured: ") == (i > 0 and targets[i - 1] == targets[i])
        if i + 1 < len(t.rows) and targets[i + 1] == targets[i]:
            assert "breach" in step  # only a breaching step is measured again
        assert r[col["p50 limit"]] == t.rows[0][col["p50 limit"]]  # one limit, from the first step
    note = next(n for n in out.notes if n.startswith(("Knee:", "No knee")))  # others: host load, method
    last = t.rows[-1][col["step"]]
    if "breach" in last and (not p.confirm or last.startswith("re-measured: ")):
        assert note.startswith("Knee:"), note
        assert f"the step at {targets[-1]:g} req/s breached" in note
    else:
        assert distinct[-1] == 160.0 and note.startswith("No knee found up to 160 req/s"), note
        assert not re.search(r"Knee: \d", note)
