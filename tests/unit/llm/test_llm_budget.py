"""Time budgets of the LLM runners (workloads/llm/budget.py): a run that runs out of time keeps and records what it
measured. The clock is a fake one the test moves (what is tested is the bookkeeping, not timing); the runners run
for real on CPU with tiny models. The GPU call's budget split (tools/gpucall/llm_run.py) is a pure function."""

from __future__ import annotations

import math
import signal
from pathlib import Path

import pytest

from ailab.contract import Context, Output, Skip
from ailab.contract.params import ParamsError, validate
from tools.gpucall.llm_run import MIN_START_S, share
from workloads.llm import budget as budget_mod
from workloads.llm import prompt_cache as serving
from workloads.llm.budget import STOP, RunBudget, coverage_order, stop_on_signal
from workloads.llm.experiments.long_context import SlidingParams, sliding
from workloads.llm.experiments.prompt_cache import WithWithoutParams, with_without
from workloads.llm.experiments.serving_engine import LongRunParams, long_run

TINY = {"model": {"d_model": 32, "n_layers": 1, "n_heads": 2}}


class FakeClock:
    """Seconds that pass only when the test says so."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture(autouse=True)
def _no_stop_left_behind():
    STOP.clear()
    yield
    STOP.clear()


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> FakeClock:
    """Every RunBudget made during the test reads this clock (the runners make their own)."""
    c = FakeClock()

    class _Time:
        monotonic = staticmethod(c)

    monkeypatch.setattr(budget_mod, "time", _Time)
    return c


def _ctx(tmp_path: Path, exp: str = "test", lines: list[str] | None = None) -> Context:
    log = lines.append if lines is not None else (lambda _m: None)
    return Context(experiment_id=exp, device="cpu", quick=True, workdir=tmp_path, log=log)


def test_coverage_order_takes_both_ends_first_then_fills_the_widest_gap() -> None:
    assert coverage_order([0.0, 0.3, 0.6, 0.9]) == [0.0, 0.9, 0.3, 0.6]
    assert coverage_order(range(9)) == [0, 8, 4, 2, 6, 1, 3, 5, 7]
    assert coverage_order([5]) == [5] and coverage_order([]) == []
    assert sorted(coverage_order(range(7))) == list(range(7))  # a permutation: nothing dropped or repeated


def test_rows_start_only_while_they_fit_and_the_rest_are_recorded(tmp_path: Path, clock: FakeClock) -> None:
    lines: list[str] = []
    b = RunBudget(_ctx(tmp_path, "d00.e1", lines), 100)
    assert b.admit("row a")  # nothing measured yet: no estimate, starts
    clock.now = 40
    b.done("row a")
    assert b.estimate("row") == 40 and b.estimate("other") is None
    assert b.admit("row b", b.estimate("row"))  # 40 s expected, 60 s left
    clock.now = 85
    b.done("row b")
    assert not b.admit("row c", b.estimate("row"))  # 45 s expected, 15 left
    clock.now = 101
    assert not b.admit("row d") and b.expired()
    out = b.finish(Output())
    t = out.tables[-1]
    assert t.name == "rows not done (time budget)"
    assert [r[0] for r in t.rows] == ["row c", "row d"]
    assert "would not fit: expected 45 s" in t.rows[0][1] and "100 s) spent at 101 s" in t.rows[1][1]
    assert out.notes[-1].startswith("Partial run: 2 row(s) not done")
    # progress lines: UTC time, experiment, seconds since its start, what happened
    assert any(line.endswith("Z d00.e1 +40.0s: done row a in 40.0 s") for line in lines)
    assert any("d00.e1 +85.0s: not done row c" in line for line in lines)


def test_nothing_measured_is_a_skip_not_an_empty_result(tmp_path: Path, clock: FakeClock) -> None:
    b = RunBudget(_ctx(tmp_path), 10)
    assert b.admit("warm-up")
    clock.now = 12
    b.done("warm-up", measured=False)  # an untimed row does not count as measured
    assert not b.admit("timed round 1")
    with pytest.raises(Skip, match="nothing measured within the time budget: timed round 1: time budget"):
        b.finish(Output())
    with pytest.raises(Skip, match=r"not started \(build\)"):
        b.require_time("build")


def test_no_budget_never_expires_and_a_full_run_adds_nothing(tmp_path: Path, clock: FakeClock) -> None:
    b = RunBudget(_ctx(tmp_path), None)
    clock.now = 1e9
    assert b.left() == math.inf and not b.expired() and b.admit("row", 1e6)
    b.done("row")
    out = b.finish(Output())
    assert out.tables == [] and out.notes == []


def test_a_stop_signal_ends_the_run_at_the_next_check(tmp_path: Path, clock: FakeClock) -> None:
    previous = signal.getsignal(signal.SIGUSR1)
    try:
        stop_on_signal(signal.SIGUSR1, log=lambda _m: None)
        b = RunBudget(_ctx(tmp_path), None)
        assert b.admit("row 1")
        signal.raise_signal(signal.SIGUSR1)
        assert b.expired() and not b.admit("row 2")
        assert b.not_done == [("row 2", "stop requested (signal) at 0 s")]
    finally:
        signal.signal(signal.SIGUSR1, previous)


@pytest.mark.parametrize("bad", [0, -5, True, "60"])
def test_a_bad_budget_is_refused_naming_it(tmp_path: Path, bad: object) -> None:
    with pytest.raises(ValueError, match=f"budget_s {bad!r}: allowed a number of seconds > 0"):
        RunBudget(_ctx(tmp_path), bad)  # type: ignore[arg-type]


def test_a_bad_budget_param_fails_at_load_naming_the_field() -> None:
    values = {"requests": 2, "shared_prefix": 0.5, "prefix_len": 8, "suffix_len": 4, "new_tokens": 2,
              "block_size": 4, "response_capacity": 4, "prefix_cache_requests": 2, "repeats": [0.0]}  # fmt: skip
    with pytest.raises(ParamsError, match="field cuda_budget_s = 0: Input should be greater than 0"):
        validate(WithWithoutParams, {**values, "cuda_budget_s": 0})


def test_the_call_shares_its_time_and_starts_nothing_it_cannot_finish() -> None:
    assert share(300, left_s=500, reserve_s=20) == 300  # the binding's budget when the call has room
    assert share(300, left_s=200, reserve_s=20) == 180  # capped by what is left of the call
    assert share(None, left_s=200, reserve_s=20) == 180  # no budget of its own: what is left
    assert share(300, left_s=20 + MIN_START_S - 1, reserve_s=20) is None  # too little left: not started


D81 = {"requests": 4, "shared_prefix": 0.8, "prefix_len": 16, "suffix_len": 8, "new_tokens": 3, "block_size": 4,
       "response_capacity": 8, "prefix_cache_requests": 2, "repeats": [0.0, 0.5, 0.9], **TINY}  # fmt: skip


def _tick_per_request(monkeypatch: pytest.MonkeyPatch, clock: FakeClock) -> None:
    """Each request that reaches the model (any configuration) takes one second of the fake clock; a response-cache
    hit takes none."""
    generate = serving.generate

    def timed(*a, **k):
        clock.now += 1
        return generate(*a, **k)

    monkeypatch.setattr(serving, "generate", timed)


def test_d81e4_stores_the_rates_that_fit_both_ends_first(
    tmp_path: Path, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    # requests reaching the model, over the 4 configurations: 16 at 0 % repeats, 14 at 50 %, 12 at 90 % (1 s each)
    _tick_per_request(monkeypatch, clock)
    out = with_without(_ctx(tmp_path, "d81.e4"), validate(WithWithoutParams, {**D81, "budget_s": 40}))
    served = [t for t in out.tables if t.name.startswith("latency by cache configuration")]
    assert [t.name.split("(")[1].split(",")[0] for t in served] == ["repeat 0%", "repeat 90%"]  # ascending order
    assert all(t.rows[0][-1] == 4 for t in served)  # whole streams
    not_done = out.tables[-1]
    assert not_done.name == "rows not done (time budget)" and not_done.rows[0][0] == "repeat 50%"
    assert "would not fit: expected 14 s (from the rows done), 12 s of the 40 s budget left" in not_done.rows[0][1]
    assert [x for x, _ in out.series[0].lines["no cache"]] == [0.0, 90.0]


def test_d81e4_a_rate_cut_short_keeps_its_requests_but_leaves_the_plots(
    tmp_path: Path, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    _tick_per_request(monkeypatch, clock)
    out = with_without(_ctx(tmp_path, "d81.e4"), validate(WithWithoutParams, {**D81, "budget_s": 10}))
    (t,) = [t for t in out.tables if t.name.startswith("latency by cache configuration")]
    assert {r[-1] for r in t.rows} == {3}  # 3 requests x 4 model runs = 12 s: the budget ran out before the 4th
    assert "Cut short by the time budget after 3 of 4 requests" in t.caption
    not_done = out.tables[-1]
    assert [r[0] for r in not_done.rows] == ["repeat 0%", "repeat 90%", "repeat 50%"]
    assert not_done.rows[0][1].startswith("3 of 4 requests served; time budget (10 s) spent")
    assert out.series == []  # a cut stream is not plotted beside whole ones


def test_d81e4_without_a_budget_serves_every_rate(tmp_path: Path) -> None:
    out = with_without(_ctx(tmp_path, "d81.e4"), validate(WithWithoutParams, {**D81, "repeats": [0.0, 0.9]}))
    assert [t.name for t in out.tables if t.name.startswith("rows not done")] == []
    assert [x for x, _ in out.series[0].lines["response cache"]] == [0.0, 90.0]


D82 = {"eval_sequences": 1, "quality_len": 256, "quality_windows": [32], "sinks": 2, "length": 64, "windows": [16],
       "chunk": 32, "new_tokens": 3, "repeats": 2, **TINY}  # fmt: skip


def test_d82e2_keeps_its_quality_table_when_no_latency_round_fits(
    tmp_path: Path, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    from workloads.llm import bench

    generate = bench.generate

    def slow(*a, **k):  # each generation takes 30 s of the fake clock
        clock.now += 30
        return generate(*a, **k)

    monkeypatch.setattr(bench, "generate", slow)
    out = sliding(_ctx(tmp_path, "d82.e2"), validate(SlidingParams, {**D82, "budget_s": 100}))
    names = [t.name for t in out.tables]
    assert names[0].startswith("perplexity by position") and len(out.tables[0].rows) == 3
    assert "long-input latency and KV memory by window" not in names  # warm-up (60 s) left no room for a round
    not_done = out.tables[-1]
    assert [r[0] for r in not_done.rows] == ["64-token input, timed round 1/2", "64-token input, timed round 2/2"]


def test_d84e4_runs_the_windows_that_fit_after_the_build(tmp_path: Path, clock: FakeClock) -> None:
    p = LongRunParams(duration_s=2, window_s=0.5, concurrency=3, prompt_median=12, prompt_max=24, output_median=6,
                      output_max=8, max_model_len=64, budget_s=1.2)  # fmt: skip
    out = long_run(_ctx(tmp_path, "d84.e4"), p)  # the fake clock stands still: 1.2 s left, 2 windows fit
    assert len(out.tables[0].rows) == 2 and "kept in flight for 1 s" in out.tables[0].caption
    not_done = out.tables[-1]
    assert not_done.rows[0][0] == "windows 3-4 (1-2 s of load)"


def test_the_gpu_call_stops_on_sigterm_and_stores_what_it_measured(tmp_path: Path) -> None:
    """The suite's python (tools/gpucall/llm_run.py) as `timeout` ends it: a real process on CPU, d81.e4 at its CPU
    params; SIGTERM once the second rate starts. Results and state go to tmp_path (AILAB_*_DIR)."""
    import json
    import os
    import subprocess
    import sys
    import time

    from ailab.contract.paths import REPO_ROOT

    env = {**os.environ, "AILAB_RESULTS_DIR": str(tmp_path / "results"), "AILAB_STATE_DIR": str(tmp_path / "state")}
    cmd = [sys.executable, "-u", "-m", "tools.gpucall.llm_run", "d81.e4,d82.e2", "--device", "cpu", "--budget-s", "600"]
    proc = subprocess.Popen(cmd, cwd=REPO_ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    lines: list[str] = []
    deadline = time.monotonic() + 120
    assert proc.stdout is not None
    for line in proc.stdout:
        lines.append(line)
        if "d81.e4 +" in line and "start repeat 90%" in line:
            proc.send_signal(signal.SIGTERM)
        assert time.monotonic() < deadline, "".join(lines[-20:])
    assert proc.wait(timeout=60) == 0, "".join(lines[-20:])
    text = "".join(lines)
    assert "signal SIGTERM: stop requested" in text and "d82.e2 not started: stop requested" in text
    rec = json.loads((tmp_path / "results/d81/d81.e4.cpu.json").read_text())
    assert rec["status"] == "ok" and 570 < rec["params"]["budget_s"] <= 580  # the call's 600 s less 20 reserved
    not_done = next(t for t in rec["tables"] if t["name"] == "rows not done (time budget)")
    assert [r[0] for r in not_done["rows"]] == ["repeat 90%", "repeat 30%", "repeat 60%"]
    assert "stop requested (signal)" in not_done["rows"][-1][1]
    served = [t for t in rec["tables"] if t["name"].startswith("latency by cache configuration")]
    assert served[0]["name"].startswith("latency by cache configuration (repeat 0%")  # the whole first rate is kept


def test_a_crashed_experiment_does_not_stop_the_next(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """The call runs each experiment in a process of its own; the process is faked here (a segfault is not made on
    purpose): the first ends by SIGSEGV, the next still starts, with the call's time left."""
    from tools.gpucall import llm_run as gpu_run

    started: list[list[str]] = []

    class FakeProcess:
        def __init__(self, cmd: list[str]) -> None:
            started.append(cmd)

        def wait(self) -> int:
            return -signal.SIGSEGV if len(started) == 1 else 0

        def poll(self) -> int:
            return 0

    monkeypatch.setattr(gpu_run.subprocess, "Popen", FakeProcess)
    previous = signal.getsignal(signal.SIGTERM)
    try:
        assert gpu_run.main(["d81.e4,d82.e2", "--budget-s", "300", "--device", "cpu"]) == 0
    finally:
        signal.signal(signal.SIGTERM, previous)
    assert [c[c.index("tools.gpucall.llm_run") + 1] for c in started] == ["d81.e4", "d82.e2"]
    assert all("--in-process" in c and float(c[c.index("--budget-s") + 1]) <= 300 for c in started)
    out = capsys.readouterr().out
    assert "d81.e4 process ended by signal SIGSEGV: what it had not stored is lost" in out
    assert "call done" in out
