"""The sequence batcher on a real tritonserver 2.51 (python backend running the exported GRU with onnxruntime):
interleaved conversations keep their own state per correlation id, concurrent conversations match the reference,
and misconfigured sequence ids get Triton's own errors. Nothing is mocked; timing is never asserted."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest
import tritonclient.grpc as grpcclient

from ailab.runner import local_context as context
from workloads.sequences import driver, gru
from workloads.sequences.config import SequenceBatching
from workloads.sequences.experiments.sequence_ids import NO_START, SequenceIdParams, sequence_ids
from workloads.sequences.repository import serve, stateful, stateless
from workloads.serving.repository import model_cache

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    models = [
        stateful("gru_direct", SequenceBatching("direct")),
        stateful("gru_oldest", SequenceBatching("oldest")),
        stateless("gru_dynamic"),
    ]
    with serve(context("seq-tests", tmp_path_factory.mktemp("seq")), models) as srv:
        yield srv


@pytest.fixture(scope="module")
def ref() -> gru.Reference:
    return gru.Reference(gru.export(model_cache()))


def x_input(x: np.ndarray) -> list:
    i = grpcclient.InferInput("X", [1, gru.FEATURES], "FP32")
    i.set_data_from_numpy(x[None, :])
    return [i]


@pytest.mark.parametrize("model", ["gru_direct", "gru_oldest"])
def test_interleaved_sequences_keep_their_own_state(server, ref, model):
    """Three conversations, steps interleaved round-robin on one connection: each sees its own state."""
    convs = {cid: gru.conversation(cid, 5) for cid in (11, 22, 33)}
    got: dict[int, list] = {cid: [] for cid in convs}
    c = grpcclient.InferenceServerClient(server.address("grpc"))
    for s in range(5):
        for cid, xs in convs.items():
            r = c.infer(model, x_input(xs[s]), sequence_id=cid, sequence_start=s == 0, sequence_end=s == 4)
            got[cid].append((int(r.as_numpy("STEP").reshape(-1)[0]), r.as_numpy("Y")[0]))
    c.close()
    for cid, xs in convs.items():
        assert [st for st, _ in got[cid]] == [1, 2, 3, 4, 5]
        np.testing.assert_allclose(np.stack([y for _, y in got[cid]]), ref.run(xs), rtol=1e-4, atol=1e-5)
    # a different conversation's outputs would differ: the check can fail
    assert not np.allclose(ref.run(convs[11]), ref.run(convs[22]), atol=1e-3)


@pytest.mark.parametrize(
    ("model", "mode"), [("gru_oldest", "stateful"), ("gru_direct", "stateful"), ("gru_dynamic", "stateless")]
)
def test_ten_concurrent_conversations_match_the_reference(server, ref, model, mode):
    pool = driver.Pool(6, ref)
    r = asyncio.run(driver.run(server.address("grpc"), model, mode, 10, 6, pool, duration_s=1.0, warmup_s=0.2))
    assert not r.errors, r.examples
    assert r.steps_ok > 0 and r.mismatches == 0
    assert r.conversations_done > 0


def test_a_request_without_start_gets_tritons_error(server):
    c = grpcclient.InferenceServerClient(server.address("grpc"))
    with pytest.raises(Exception, match=NO_START):
        c.infer("gru_oldest", x_input(np.zeros(gru.FEATURES, np.float32)), sequence_id=987654)
    c.close()


def test_misconfigured_ids_runner_observes_every_expected_outcome(tmp_path):
    out = sequence_ids(context("d39.e4", tmp_path), SequenceIdParams(strategies=["oldest"], idle_wait_s=0.6))
    t = out.tables[0]
    rows = [dict(zip([c.name for c in t.columns], r, strict=True)) for r in t.rows]
    assert len(rows) == 9
    assert all(r["as expected"] == "yes" for r in rows), [r for r in rows if r["as expected"] != "yes"]
    assert sum(r["observed"].startswith("StatusCode.INVALID_ARGUMENT") for r in rows) == 6
