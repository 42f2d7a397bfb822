"""The d78 / d84 runners on the engine, called as the lab calls them, on CPU with a tiny random Llama and small
settings (seconds). Nothing is mocked; timings are not asserted, only that the tables hold what they say."""

from __future__ import annotations

import pytest

from ailab.contract import Context, Skip
from workloads.llm.experiments.serving_engine import (
    BenchParams,
    FTParams,
    LongRunParams,
    fastertransformer,
    frameworks,
    long_run,
    serve_bench,
)

SMALL = dict(prompt_median=12, prompt_max=24, output_median=6, output_max=8, max_model_len=64, min_requests=2)


def _ctx(tmp_path, exp: str) -> Context:
    return Context(experiment_id=exp, device="cpu", quick=True, workdir=tmp_path)


def test_serve_bench_tables_on_cpu(tmp_path):
    p = BenchParams(concurrency=[1, 4], hf_eager=[4], overload_concurrency=6, verify_prompts=2, verify_tokens=6,
                    max_num_seqs=8, **SMALL)  # fmt: skip
    out = serve_bench(_ctx(tmp_path, "d78.e1"), p)
    assert out.substitute is not None and out.substitute.instead_of == "vLLM"
    t = {x.name: x for x in out.tables}
    check = t["generation check: engine vs HF generate (greedy, same weights)"]
    assert [r[3] for r in check.rows] == ["yes", "yes"]  # fp32 on CPU: token for token
    main = t["output throughput and latency by concurrency"]
    assert [(r[0], r[1]) for r in main.rows] == [("engine", 1), ("engine", 4), ("HF generate (eager)", 4)]
    engine_4, hf_4 = main.rows[1], main.rows[2]
    assert engine_4[3] > 0 and hf_4[3] > 0 and all(r[5] > 0 for r in main.rows)
    over = t["overload: KV blocks and preemptions"]
    small, ample = over.rows[1], over.rows[0]
    assert small[0] < small[1] and small[-1] == ample[-1] == 6  # same outputs on a pool too small for all
    goals = t["goals (issue 18)"]
    assert {r[3] for r in goals.rows} == {"not assessed"}  # goals are for the H200 8B run


def test_fastertransformer_and_frameworks_without_a_stored_run(tmp_path):
    ctx = _ctx(tmp_path, "d78.e2")
    with pytest.raises(Skip):
        fastertransformer(ctx, FTParams())
    out = frameworks(_ctx(tmp_path, "d78.e5"), FTParams())
    t = out.tables[0]
    assert [c.name for c in t.columns][-1] == "this engine" and len(t.rows) >= 10
    assert not out.derived_from  # nothing measured to show beside it


def test_long_run_reports_windows(tmp_path):
    small = {k: v for k, v in SMALL.items() if k != "min_requests"}
    p = LongRunParams(duration_s=2, window_s=0.5, concurrency=3, **small)
    out = long_run(_ctx(tmp_path, "d84.e4"), p)
    rows = out.tables[0].rows
    assert len(rows) >= 2 and all(r[-1] == 0 for r in rows)  # no errors
    assert sum(r[1] for r in rows) > 0 and out.notes and out.notes[0].startswith("Drift")
