"""A real tritonserver (python backend) serving generated repositories: readiness, outputs, batching, control."""

from __future__ import annotations

import asyncio
import concurrent.futures
import math

import numpy as np
import pytest

from workloads.serving import metrics
from workloads.serving.client import AsyncClient, Client, InferenceError
from workloads.serving.loadgen import LoadSpec, run

pytestmark = pytest.mark.integration


def test_every_generated_model_loads_ready(triton, specs):
    with Client(triton.address("http"), "http") as c:
        index = {(m["name"], m.get("version", "")): m.get("state") for m in c.repository_index()}
        for spec in specs:
            assert c.is_ready(spec.name), spec.name
        assert c.is_ready("mlp_versions", "1") and c.is_ready("mlp_versions", "3")
        assert not c.is_ready("mlp_versions", "2")  # version_policy specific [1, 3]
    assert all(state == "READY" for (name, _), state in index.items() if name != "mlp_versions")


@pytest.mark.parametrize("protocol", ["http", "grpc"])
@pytest.mark.parametrize("model", ["mlp", "mlp_nobatch", "mlp_zero", "mlp_torch", "mlp_cache"])
def test_outputs_match_onnxruntime(triton, reference, digits, protocol, model):
    want = reference.run(None, {"input": digits})[0]
    with Client(triton.address(protocol), protocol) as c:
        got = c.infer(model, {"input": digits})["logits"]
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("protocol", ["http", "grpc"])
def test_async_clients_match_onnxruntime(triton, reference, digits, protocol):
    want = reference.run(None, {"input": digits})[0]

    async def go():
        async with AsyncClient(triton.address(protocol), protocol) as c:
            results = await asyncio.gather(*[c.infer("mlp", {"input": digits[i : i + 1]}) for i in range(len(digits))])
        return np.concatenate([r.as_numpy("logits") for r in results])

    np.testing.assert_allclose(asyncio.run(go()), want, rtol=1e-4, atol=1e-5)


def test_dynamic_batching_really_batches(triton, reference, digits):
    """24 concurrent single-image requests execute as far fewer model executions (from Triton's metrics)."""
    before = metrics.read(triton.metrics_url, "mlp_batch")
    x = np.repeat(digits[:1], 24, axis=0)

    def one(i):
        with Client(triton.address("grpc"), "grpc") as c:
            return c.infer("mlp_batch", {"input": x[i : i + 1]})["logits"]

    with concurrent.futures.ThreadPoolExecutor(24) as pool:
        outs = list(pool.map(one, range(24)))
    d = metrics.read(triton.metrics_url, "mlp_batch") - before
    assert d.inference_count == 24
    assert d.exec_count < 24 / 2, f"24 requests ran as {d.exec_count} executions"
    assert d.avg_batch > 2
    want = reference.run(None, {"input": digits[:1]})[0]
    for o in outs:  # every request got its own slice of the batch back
        np.testing.assert_allclose(o, want, rtol=1e-4, atol=1e-5)


def test_explicit_unload_and_load(triton, digits):
    with Client(triton.address("grpc"), "grpc") as c:
        c.unload("mlp_nobatch")
        for _ in range(100):
            if not c.is_ready("mlp_nobatch"):
                break
        assert not c.is_ready("mlp_nobatch")
        with pytest.raises(InferenceError) as exc:
            c.infer("mlp_nobatch", {"input": digits})
        assert exc.value.kind == "server" and "mlp_nobatch" in str(exc.value)
        c.load("mlp_nobatch")
        assert c.is_ready("mlp_nobatch")
        assert c.infer("mlp_nobatch", {"input": digits})["logits"].shape == (len(digits), 10)


@pytest.mark.parametrize("protocol", ["http", "grpc"])
def test_unknown_model_and_wrong_shape_surface_the_servers_error(triton, digits, protocol):
    with Client(triton.address(protocol), protocol) as c:
        with pytest.raises(InferenceError) as exc:
            c.infer("no_such_model", {"input": digits})
        msg = str(exc.value)
        assert exc.value.kind == "server" and "no_such_model" in msg and triton.address(protocol) in msg
        assert "unknown model" in msg
        with pytest.raises(InferenceError) as exc:
            c.infer("mlp", {"input": digits[:, :, :10, :]})
        assert "unexpected shape for input 'input'" in str(exc.value) and "'mlp'" in str(exc.value)


def test_load_generator_counts_server_errors_instead_of_crashing(triton, digits):
    bad_model = run(LoadSpec(triton.address("grpc"), "no_such_model", "grpc", concurrency=4, warmup_s=0, requests=40))
    assert bad_model.ok == 0 and bad_model.errors == {"server": 40}
    assert "no_such_model" in bad_model.error_examples["server"]
    wrong = {"input": digits[:1, :, :10, :]}
    bad_shape = run(
        LoadSpec(triton.address("http"), "mlp", "http", concurrency=2, warmup_s=0, requests=10, inputs=wrong)
    )
    assert bad_shape.errors == {"server": 10} and "unexpected shape" in bad_shape.error_examples["server"]


@pytest.mark.parametrize("mode", ["closed", "open"])
def test_load_generator_measures_a_window(triton, mode):
    spec = LoadSpec(
        triton.address("grpc"),
        "mlp",
        "grpc",
        mode=mode,
        concurrency=8,
        qps=200,
        warmup_s=0.3,
        requests=150,
        metrics_url=triton.metrics_url,
    )
    r = run(spec)
    assert r.ok == 150 and r.errors == {}
    lat = r.latency_ms
    assert 0 < lat["p50"] <= lat["p90"] <= lat["p95"] <= lat["p99"] <= lat["p99.9"] <= lat["max"]
    assert r.server["requests"] >= 150 and r.server["avg_batch"] >= 1
    if mode == "open":
        assert r.target_qps == 200 and r.send_lag_ms["p50"] >= 0


def test_load_generator_split_over_processes_merges_exactly(triton):
    spec = LoadSpec(
        triton.address("grpc"),
        "mlp",
        "grpc",
        concurrency=4,
        warmup_s=0.3,
        requests=120,
        processes=2,
        metrics_url=triton.metrics_url,
    )
    r = run(spec)
    assert r.ok == 120 and len(r.samples_ms) == 120 and r.errors == {}
    assert r.latency_ms["p99"] == sorted(r.samples_ms)[math.ceil(0.99 * 120) - 1]  # nearest rank over the union
    assert r.server["requests"] >= 120
