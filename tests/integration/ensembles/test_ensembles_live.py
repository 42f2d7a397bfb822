"""The ensemble on a real tritonserver 2.51 (python backend + onnxruntime, CPU): its answers equal
softmax(mlp(normalize(x))) computed here, the server reports the ensemble as generated, and every step ran.
Nothing is mocked: the server, its python stubs and the ONNX model are the real ones."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pytest

from ailab.contract import Context
from ailab.runner import local_platform
from workloads.ensembles.pipeline import K, pipeline_specs, raw_images, reference
from workloads.serving import harness, metrics
from workloads.serving.client import Client

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[harness.Served]:
    ctx = Context("ensembles-tests", "cpu", True, tmp_path_factory.mktemp("ens"), platform=local_platform)
    with harness.serve(ctx, pipeline_specs(), warm_requests=0) as srv:
        yield srv


def test_ensemble_output_equals_softmax_of_mlp_of_normalize(served: harness.Served):
    x = raw_images(12, seed=3)
    before = {m: metrics.read(served.metrics_url, m) for m in ("pipeline", "normalize", "mlp", "softmax")}
    with Client(served.address("grpc"), "grpc") as c:
        probs = c.infer("pipeline", {"image": x})["probs"]
    after = {m: metrics.read(served.metrics_url, m) for m in before}
    assert probs.shape == (12, 10) and probs.dtype == np.float32
    np.testing.assert_allclose(probs, reference(x), atol=1e-5)
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, atol=1e-5)
    for m in before:  # one ensemble request ran each step exactly once
        assert (after[m] - before[m]).request_success == 1, m


def test_python_postprocessing_step_returns_numpy_top_k(served: harness.Served):
    x = raw_images(5, seed=4)
    with Client(served.address("http"), "http") as c:
        out = c.infer("pipeline_post", {"image": x})
    ref = reference(x)
    want = np.argsort(-ref, axis=1, kind="stable")[:, :K]
    assert out["labels"].dtype == np.int64 and out["labels"].shape == (5, K)
    np.testing.assert_array_equal(out["labels"], want)
    np.testing.assert_allclose(out["scores"], np.take_along_axis(ref, want, axis=1), atol=1e-5)


def test_fused_single_model_gives_the_same_answer(served: harness.Served):
    x = raw_images(7, seed=5)
    with Client(served.address("grpc"), "grpc") as c:
        a = c.infer("fused", {"image": x})["probs"]
        b = c.infer("pipeline", {"image": x})["probs"]
    np.testing.assert_allclose(a, b, atol=1e-6)


def test_server_reports_the_generated_ensemble_config(served: harness.Served):
    import tritonclient.grpc as grpcclient

    c = grpcclient.InferenceServerClient(served.address("grpc"))
    try:
        cfg = c.get_model_config("pipeline_post", as_json=True)["config"]
    finally:
        c.close()
    assert cfg["platform"] == "ensemble"
    steps = cfg["ensemble_scheduling"]["step"]
    assert [s["model_name"] for s in steps] == ["normalize", "mlp", "softmax", "topk"]
    assert steps[1]["input_map"] == {"input": "pixels"}


def test_a_wrong_input_type_is_refused_by_the_server(served: harness.Served):
    from workloads.serving.client import InferenceError

    with Client(served.address("grpc"), "grpc") as c, pytest.raises(InferenceError, match="server error"):
        c.infer("pipeline", {"image": raw_images(2).astype(np.float32)})
