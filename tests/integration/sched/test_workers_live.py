"""d72/d83 against real worker processes (ONNX Runtime sessions of the Day-3 MLP, socket pairs, asyncio front-end).

Assertions are on counts, order and values, never on timings: the host is a shared 2-core machine.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from ailab.contract import Context
from workloads.models import ortbench
from workloads.models.data import sample_inputs
from workloads.sched import balance, dispatch, qpsload
from workloads.sched.batching import BatchConfig, Frontend, QueueFull
from workloads.sched.experiments import dispatch_policies, queueing
from workloads.sched.pool import WorkerPool, default_model

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def model() -> Path:
    return default_model()


@pytest.fixture(scope="module")
def pool2(model: Path) -> Iterator[WorkerPool]:
    """Two workers, the second three times slower (sleep-padded), shared by the module's dispatch tests."""
    with WorkerPool(2, slowdown=[1, 3], model=model) as p:
        yield p


@pytest.fixture(scope="module")
def pool1(model: Path) -> Iterator[WorkerPool]:
    with WorkerPool(1, model=model) as p:
        yield p


@pytest.fixture(scope="module")
def direct(model: Path) -> tuple[np.ndarray, np.ndarray]:
    """64 digits and their logits from an in-process session, one image per run."""
    x = sample_inputs(64)[0]
    sess = ortbench.session(model, "all", intra_threads=1)
    return x, np.concatenate([sess.run(None, {"input": x[k : k + 1]})[0] for k in range(len(x))])


def test_workers_answer_what_onnx_runtime_answers_in_process(pool2, direct):
    x, want = direct
    for i in range(pool2.n):
        rep, _ = pool2.roundtrip(i, x[:1])
        assert np.array_equal(rep.logits, want[:1])
        assert rep.t_start <= rep.t_end and rep.compute_s > 0
        noop, _ = pool2.roundtrip(i, x[:1], run=False)
        assert noop.logits is None and noop.compute_s == 0.0


def test_a_slowed_worker_holds_each_task_for_slowdown_times_inference_plus_device_time(model, direct):
    x, _ = direct
    with WorkerPool(1, slowdown=[3], model=model, device_ms=1.0) as p:
        for _ in range(5):
            rep, rt = p.roundtrip(0, x[:4])
            # time.sleep never returns early, so this lower bound holds on any host, however busy
            assert rep.busy_s >= 3 * (rep.compute_s + 1e-3) and rt >= rep.busy_s


def test_a_worker_that_cannot_load_its_model_is_reported_with_the_path(tmp_path):
    missing = tmp_path / "absent.onnx"
    with pytest.raises(RuntimeError, match=r"worker 0 did not load .*absent\.onnx"):
        WorkerPool(1, model=missing).start()


def test_a_worker_killed_mid_task_is_named_instead_of_waited_for(model, direct):
    x, _ = direct

    async def go(p: WorkerPool) -> None:
        d = dispatch.Dispatcher(p, dispatch.make("round_robin", 1))
        d.submit(dispatch.Task(0, x[:1], 0.0))  # held ~10 s by its device time: certainly in flight when killed
        p.procs[0].kill()
        await d.quiesce(timeout_s=30)

    with WorkerPool(1, model=model, device_ms=10_000) as p, pytest.raises(RuntimeError, match=r"worker 0 \(pid \d+"):
        asyncio.run(go(p))


def test_round_robin_dispatch_alternates_and_every_answer_matches(pool2, direct):
    x, want = direct

    async def go() -> list[dispatch.Task]:
        d = dispatch.Dispatcher(pool2, dispatch.make("round_robin", 2))
        futs = [d.submit(dispatch.Task(k, x[k : k + 1], 0.0)) for k in range(10)]
        done = await asyncio.gather(*futs)
        d.close()
        return done

    done = asyncio.run(go())
    assert [t.worker for t in done] == [0, 1] * 5
    for k, t in enumerate(done):
        assert np.array_equal(t.reply.logits, want[k : k + 1])


def test_least_load_keeps_the_outstanding_counts_it_is_given_and_returns_to_zero(pool2, direct):
    x, _ = direct

    async def go() -> tuple[list[int], list[int]]:
        sched = dispatch.make("least_load", 2)
        d = dispatch.Dispatcher(pool2, sched)
        ids = itertools.count()
        futs = [d.submit(dispatch.Task(next(ids), x[:8], 0.0), worker=1)]  # pin one task on the slow worker
        picks = []
        for _ in range(3):  # no await in between: no answer can arrive, the counts are exactly what we sent
            t = dispatch.Task(next(ids), x[:8], 0.0)
            futs.append(d.submit(t))
            picks.append(t.worker)
        await asyncio.gather(*futs)
        d.close()
        return picks, sched.outstanding

    picks, outstanding = asyncio.run(go())
    # outstanding before each pick: [0,1] -> 0; [1,1] tie -> cursor (1) ; [1,2] -> 0
    assert picks == [0, 1, 0]
    assert outstanding == [0, 0]


def test_split_and_merge_over_real_workers_equals_the_unsplit_request(pool2, direct):
    x, _ = direct
    whole = pool2.roundtrip(0, x)[0].logits
    for parts, weights in ((2, None), (3, [3.0, 1.0, 3.0]), (5, None)):
        slices = dispatch.split(len(x), parts, weights)
        merged, _, _, arrived = balance.split_run(pool2, x, slices, [k % 2 for k in range(parts)])
        assert sorted(arrived) == list(range(parts))
        assert merged.shape == whole.shape
        assert np.allclose(merged, whole, atol=1e-5) and (merged.argmax(1) == whole.argmax(1)).all()


def test_balance_load_test_accounts_for_every_task_and_round_robin_counts_are_equal(pool2):
    x = sample_inputs(16)[0]
    r = balance.load_test(pool2, "round_robin", x, rate=200, warmup_s=0.1, duration_s=0.5, drain_s=5)
    counts = [w.tasks for w in r.workers]
    assert sum(counts) == r.run.sent > 0
    assert max(counts) - min(counts) <= 1
    assert r.run.ok + r.run.errors.get("unfinished", 0) == r.run.sent
    assert r.picks[:4] == [0, 1, 0, 1]
    # the pool is reusable after a run: a second scheduler runs on the same workers
    r2 = balance.load_test(pool2, "least_load", x, rate=400, warmup_s=0.1, duration_s=0.3, drain_s=5)
    assert r2.run.ok + r2.run.errors.get("unfinished", 0) == r2.run.sent
    assert r2.window_picks and all(before[w] == min(before) for before, w in r2.window_picks)


def test_frontend_burst_accepts_exactly_the_capacity_and_answers_each_correctly(pool1, direct):
    x, want = direct

    async def go() -> tuple[list, int, Frontend]:
        fe = Frontend(pool1, BatchConfig(max_batch_size=8, max_queue_delay_us=0, queue_capacity=40))
        server = asyncio.create_task(fe.serve())
        accepted, rejected = [], 0
        for k in range(64):  # one loop turn: the batcher cannot take anything in between
            try:
                accepted.append((k, fe.submit(x[k : k + 1])))
            except QueueFull:
                rejected += 1
        await asyncio.gather(*[r.future for _, r in accepted])
        await fe.close(server)
        return accepted, rejected, fe

    accepted, rejected, fe = asyncio.run(go())
    assert len(accepted) == 40 and rejected == 24 and fe.queue.rejected == 24
    for k, r in accepted:
        assert np.array_equal(r.logits, want[k : k + 1])
    batches = fe.batches
    assert all(1 <= len(b.requests) <= 8 for b in batches)
    assert sum(len(b.requests) for b in batches) == 40
    assert [r.id for b in batches for r in b.requests] == sorted(r.id for _, r in accepted)  # FIFO across batches


def test_frontend_sends_a_full_batch_at_once_and_a_lone_request_after_its_delay(pool1, direct):
    x, want = direct

    async def go() -> list[int]:
        # a preferred size of 4 and a long delay: 4 go as soon as formed, the 5th alone once its delay expires
        fe = Frontend(pool1, BatchConfig(max_batch_size=8, max_queue_delay_us=50_000, preferred_sizes=(4,)))
        server = asyncio.create_task(fe.serve())
        reqs = [fe.submit(x[k : k + 1]) for k in range(5)]
        got = await asyncio.gather(*[r.future for r in reqs])
        for k, g in enumerate(got):
            assert np.array_equal(g, want[k : k + 1])
        await fe.close(server)
        return [len(b.requests) for b in fe.batches]

    assert asyncio.run(go()) == [4, 1]


def test_qps_load_test_accounts_for_every_request(pool1):
    cfg = BatchConfig(max_batch_size=16, max_queue_delay_us=1000, queue_capacity=4096)
    r = qpsload.load_test(pool1, cfg, qps=300, label="dyn", warmup_s=0.1, duration_s=0.5, drain_s=5)
    run = r.run
    assert run.sent > 0
    assert run.ok + run.errors.get("rejected", 0) + run.errors.get("unfinished", 0) == run.sent
    assert 1.0 <= r.avg_batch <= 16
    assert len(r.samples_ms) == run.ok
    assert run.latency_ms["p50"] <= run.latency_ms["p99"] <= run.latency_ms["max"]


def _ctx(eid: str, tmp_path: Path) -> Context:
    return Context(experiment_id=eid, device="cpu", quick=True, workdir=tmp_path, log=lambda _m: None)


def test_request_queue_runner_reports_rejections_and_correct_answers(tmp_path):
    p = queueing.QueueParams(capacities=[16, 256], burst=100)
    out = queueing.request_queue(_ctx("d83.e1", tmp_path), p)
    burst = next(t for t in out.tables if t.name == "burst")
    rows = {r[0]: r for r in burst.rows}
    assert rows[16][2:4] == [16, 84] and rows[256][2:4] == [100, 0]
    assert all(r[-1] is True for r in burst.rows)


def test_split_merge_runner_reports_identical_merges(tmp_path):
    p = dispatch_policies.SplitMergeParams(workers=2, slowdown=[1, 2], rows=64, parts=[1, 2], repeats=2)
    out = dispatch_policies.split_merge(_ctx("d72.e3", tmp_path), p)
    (t,) = out.tables
    assert len(t.rows) == 4 and all(r[-1] is True for r in t.rows)


@pytest.mark.parametrize("eid", ["d72.e1", "d72.e2", "d72.e3", "d72.e4", "d83.e1", "d83.e2", "d83.e3", "d83.e4"])
def test_every_sched_binding_runs_at_its_quick_size(eid, tmp_path):
    """The bound runner with its bound params + quick overrides, typed as `lab run <day> --quick` types them."""
    from ailab.curriculum.loader import catalogue
    from ailab.runner import load_runner, resolve_params

    exp = catalogue().experiments[eid]
    assert exp.binding is not None and exp.binding.needs == []
    typed, _ = resolve_params(exp, quick=True)
    out = load_runner(exp.binding.runner)(_ctx(eid, tmp_path), typed)
    assert out.tables and all(t.rows for t in out.tables)
    assert all(len(r) == len(t.columns) for t in out.tables for r in t.rows)
    assert all(line for s in out.series for line in s.lines.values())
