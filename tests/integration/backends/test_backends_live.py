"""A real tritonserver 2.51 serving the tokenizer on the Python backend: the ids are the tokenizer library's ids, the
served hot loops (pure Python and compiled C++) return the in-process Python result, and bad input gets Triton's
error. Nothing is mocked."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from tokenizers import Tokenizer

from ailab.contract import Context
from ailab.runner import local_platform
from workloads.backends import corpus, serving
from workloads.backends.hotloop import ngram
from workloads.backends.repository import TokenizerModel
from workloads.serving.client import Client, InferenceError

pytestmark = pytest.mark.integration

SEQ = 64


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[serving.Served]:
    work = tmp_path_factory.mktemp("backends")
    ctx = Context(experiment_id="test", device="cpu", quick=True, workdir=work, platform=local_platform)
    models = [TokenizerModel("tok_python", seq_len=SEQ), TokenizerModel("tok_cpp", impl="cpp", seq_len=SEQ)]
    with serving.serve(ctx, models, work) as srv:
        yield srv


def test_served_ids_are_the_tokenizer_librarys(served: serving.Served) -> None:
    tok = Tokenizer.from_file(str(served.tokenizer_json))
    tok.enable_truncation(SEQ)
    texts = [*corpus.texts(11, 30), "推理服务 Triton", "x" * 3, *corpus.texts(3, 200)]  # CJK, short, truncated
    with Client(served.address("http"), "http", timeout_s=60) as c:
        batch = c.infer("tok_python", serving.text_batch(texts))
        singles = [c.infer("tok_python", serving.text_batch([t])) for t in texts[:3]]
    for i, t in enumerate(texts):
        want = tok.encode(t).ids
        n = int(batch["LENGTH"][i, 0])
        assert batch["IDS"][i, :n].tolist() == want and not batch["IDS"][i, n:].any()
    assert [s["IDS"][0, : int(s["LENGTH"][0, 0])].tolist() for s in singles] == [tok.encode(t).ids for t in texts[:3]]
    assert int(batch["LENGTH"][-1, 0]) == SEQ  # the 200-word texts are truncated to seq_len


def test_served_hot_loops_equal_pure_python(served: serving.Served) -> None:
    tok = Tokenizer.from_file(str(served.tokenizer_json))
    tok.enable_truncation(SEQ)
    texts = corpus.texts(8, 50)
    want = ngram.ngram_python(*ngram.to_csr([e.ids for e in tok.encode_batch(texts)]), 3, 4096)
    with Client(served.address("http"), "http", timeout_s=60) as c:
        for model in ("tok_python", "tok_cpp"):
            np.testing.assert_array_equal(c.infer(model, serving.text_batch(texts))["FEATURES"], want)


def test_bad_requests_are_rejected_by_triton(served: serving.Served) -> None:
    with Client(served.address("http"), "http", timeout_s=30) as c:
        with pytest.raises(InferenceError, match="TEXT"):
            c.infer("tok_python", {"TEXT": np.zeros((1, 1), dtype=np.float32)})
        with pytest.raises(InferenceError, match="batch-size must be <= 16"):
            c.infer("tok_python", serving.text_batch(corpus.texts(17, 5)))
        with pytest.raises(InferenceError, match="input TEXT: element is not UTF-8"):
            c.infer("tok_python", {"TEXT": np.array([[b"\xff\xfe"]], dtype=np.object_)})
        assert c.infer("tok_python", serving.text_batch(["still serving"]))["LENGTH"][0, 0] > 0  # model still up


def test_load_generator_reaches_the_model(served: serving.Served) -> None:
    res, _ = serving.load(served, "tok_cpp", corpus.texts(4, 30), concurrency=2, warmup_s=0.2, duration_s=0.5)
    assert res.ok > 0 and not res.errors and res.throughput_ips == pytest.approx(4 * res.throughput_rps)


def test_hot_loop_runner_serves_every_variant(tmp_path: Path) -> None:
    """The runner as `lab run` calls it: each served variant is checked against the in-process result first."""
    from workloads.backends.experiments.hot_loop import HotLoopParams, python_vs_cpp

    ctx = Context(experiment_id="d30.e2", device="cpu", quick=True, workdir=tmp_path, platform=local_platform)
    p = HotLoopParams(impls=["cpp"], batch=2, words=20, repeats=3, served=True, concurrency=1, duration_s=0.5)
    out = python_vs_cpp(ctx, p)
    served = {t.name: t for t in out.tables}["served"]
    assert [r[0] for r in served.rows] == ["python", "cpp"] and all(r[-1] == "none" for r in served.rows)
    assert any("C++/Python served p50 latency ratio" in n for n in out.notes)


def test_instances_runner_serves_each_count_and_runs_threads(tmp_path: Path) -> None:
    from workloads.backends.experiments.instances import InstancesParams, instances_gil

    ctx = Context(experiment_id="d30.e4", device="cpu", quick=True, workdir=tmp_path, platform=local_platform)
    p = InstancesParams(
        counts=[1, 2],
        threads_impls=["python", "cpp"],
        concurrency=2,
        batch=2,
        words=20,
        duration_s=0.5,
        thread_seconds=0.3,
        thread_batch=4,
    )
    out = instances_gil(ctx, p)
    t = {t.name: t for t in out.tables}
    assert [r[0] for r in t["instances"].rows] == [1, 2] and all(r[-1] == "none" for r in t["instances"].rows)
    assert [(r[0], r[1]) for r in t["threads_one_process"].rows] == [
        ("python", 1),
        ("python", 2),
        ("cpp", 1),
        ("cpp", 2),
    ]
    assert all(r[4] > 0 for r in t["threads_one_process"].rows)  # the process used some CPU
