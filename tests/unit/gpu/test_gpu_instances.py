"""d07.e3, d18.e1, d51.e2-e4 on a CPU host: the layouts' parameters are checked by name, per-model statistics come
from every instance's requests, and the tables set each model against itself alone; d38.e3's and d34.e4's parameters
and all three runners' skips. The GPU is what CI lacks: the worker processes and NVML are replaced here by recorded
worker outputs (tests/gpu runs them for real)."""

from __future__ import annotations

import pytest

from ailab.contract import Context, Skip
from ailab.contract.params import ParamsError, validate
from workloads.gpu import clients
from workloads.gpu.experiments.instances import InstancesParams, ModelShape, instance_layouts, label, summarise
from workloads.gpu.experiments.preprocess import PrepParams, prep_placement
from workloads.gpu.experiments.versions import VersionsParams, versions_memory


def test_a_layout_naming_an_unknown_model_is_refused_naming_the_layout_and_the_models() -> None:
    with pytest.raises(ParamsError, match=r"layouts\[1\] names \['huge'\]: allowed large, small"):
        validate(InstancesParams, {"layouts": [["large"], ["huge", "small"]]})


@pytest.mark.parametrize(
    ("bad", "field"),
    [({"layouts": []}, "layouts"), ({"layouts": [[]]}, "layouts"), ({"layouts": [["small"]], "seconds": 0}, "seconds"),
     ({"layouts": [["x"]], "models": {"x": {"dim": 8, "layers": 1, "batch": 1}}}, "dim"),
     ({"layouts": [["Big"]], "models": {"Big": {"dim": 64, "layers": 1, "batch": 1}}}, "models")],
)  # fmt: skip
def test_bad_values_name_their_field(bad: dict, field: str) -> None:
    with pytest.raises(ParamsError, match=field):
        validate(InstancesParams, bad)


@pytest.mark.parametrize(
    ("runner", "params"),
    [(instance_layouts, InstancesParams(layouts=[["small"]])), (prep_placement, PrepParams()),
     (versions_memory, VersionsParams())],
)  # fmt: skip
def test_the_runners_skip_without_a_gpu(tmp_path, runner, params) -> None:
    with pytest.raises(Skip, match="needs an NVIDIA GPU"):
        runner(Context("d51.e4", "cpu", True, tmp_path), params)


@pytest.mark.parametrize(
    ("model", "bad", "field"),
    [(PrepParams, {"batches": []}, "batches"), (PrepParams, {"batches": [0]}, "batches"),
     (PrepParams, {"dim": 8}, "dim"), (VersionsParams, {"versions": 0}, "versions"),
     (VersionsParams, {"versions": 17}, "versions"), (VersionsParams, {"model": {"dim": 64}}, "layers")],
)  # fmt: skip
def test_bad_preprocessing_and_versions_values_name_their_field(model, bad: dict, field: str) -> None:
    with pytest.raises(ParamsError, match=field):
        validate(model, bad)


def test_a_label_counts_the_instances_of_each_model_in_order() -> None:
    assert label(["large", "large", "small", "small"]) == "large x2 + small x2"
    assert label(["small"]) == "small x1"


def test_per_model_statistics_pool_every_instance_of_the_model() -> None:
    shapes = {"a": ModelShape(dim=64, layers=1, batch=4), "b": ModelShape(dim=64, layers=1, batch=1)}
    outs = [
        {"requests": 3, "latencies_ms": [1.0, 2.0, 3.0], "reserved_mib": 10.0},
        {"requests": 2, "latencies_ms": [4.0, 5.0], "reserved_mib": 20.0},
        {"requests": 1, "latencies_ms": [9.0], "reserved_mib": 5.0},
    ]
    got = summarise(["a", "b", "a"], shapes, outs, seconds=2.0)
    # a's two instances pooled: [1, 2, 3, 9]; nearest rank, an observed value each
    assert got["a"] == {"instances": 2, "rps": 2.0, "ips": 8.0, "p50": 2.0, "p99": 9.0, "reserved_mib": 15.0}
    assert got["b"] == {"instances": 1, "rps": 1.0, "ips": 1.0, "p50": 4.0, "p99": 5.0, "reserved_mib": 20.0}


def test_the_tables_set_each_model_against_itself_alone(tmp_path, monkeypatch, fake_nvml) -> None:
    """run_clients and NVML replaced: client latencies and memory readings are given, the arithmetic is checked."""
    lat = {"large": [10.0] * 50, "small": [1.0] * 500}

    def fake_run(n, cfg, per_client=None, **_kw):
        outs = []
        for c in per_client:
            name = "large" if c["dim"] == 8192 else "small"
            shared = n > 1
            ms = [v * (2.0 if shared else 1.0) for v in lat[name]]
            outs.append({"requests": len(ms) // (2 if shared else 1), "latencies_ms": ms, "reserved_mib": 100.0})
        return clients.ClientRun(n, 0, 0.0, 0.0, 0.0, [], outs, started_at=0.0)

    monkeypatch.setattr(clients, "run_clients", fake_run)
    fake_nvml([(0.5, 3000.0, 80.0)], now=(0.0, 1000.0, 0.0))
    p = InstancesParams(layouts=[["large"], ["small"], ["large", "small"]], seconds=1.0)
    out = instance_layouts(Context("d18.e1", "cuda", True, tmp_path), p)
    rows = {(r[0], r[1]): r for r in next(t for t in out.tables if t.name == "per_model").rows}
    shared_small = rows["large x1 + small x1", "small"]
    assert shared_small[7] == 2.0 and shared_small[8] == 2.0  # p50 and p99 vs alone
    assert shared_small[9] == 0.5  # requests per instance vs alone
    assert rows["small x1", "small"][7] == 1.0
    layout = {r[0]: r for r in next(t for t in out.tables if t.name == "per_layout").rows}
    assert layout["large x1 + small x1"][3] == 2000  # NVML in use at its highest minus before
    assert layout["large x1 + small x1"][4] == 200 and layout["large x1 + small x1"][5] == 80.0
    assert out.substitute is not None and "instance_group" in out.substitute.instead_of


def test_run_clients_wants_one_config_per_client() -> None:
    with pytest.raises(ValueError, match="per_client: 1 configs for 2 clients"):
        clients.run_clients(2, {}, per_client=[{}])
