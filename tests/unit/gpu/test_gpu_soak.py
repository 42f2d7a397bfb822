"""d49.e4 on a CPU host: the soak's parameters are checked by name, the worker cuts its windows as it goes (a request
that raises is counted, not fatal), and the verdicts follow the thresholds. The GPU is what CI lacks: the worker
process, PyTorch's CUDA memory counters and NVML are replaced by given values (tests/gpu runs the real ones)."""

from __future__ import annotations

import itertools
from types import SimpleNamespace

import pytest

from ailab.contract import Context, Skip
from ailab.contract.params import ParamsError, validate
from workloads.gpu import clients, worker
from workloads.gpu.experiments.soak import GpuSoakParams, gpu_soak


def test_a_run_shorter_than_four_windows_is_refused_naming_both_fields() -> None:
    with pytest.raises(ParamsError, match=r"duration_s 30 with window_s 10: allowed at least 4 windows"):
        validate(GpuSoakParams, {"duration_s": 30, "window_s": 10})


@pytest.mark.parametrize(
    ("bad", "field"),
    [({"duration_s": 5}, "duration_s"), ({"window_s": 0.5}, "window_s"), ({"max_p99_drift": 0.5}, "max_p99_drift"),
     ({"max_fd_growth": -1}, "max_fd_growth"), ({"max_error_rate": 2}, "max_error_rate")],
)  # fmt: skip
def test_bad_thresholds_name_their_field(bad: dict, field: str) -> None:
    with pytest.raises(ParamsError, match=field):
        validate(GpuSoakParams, bad)


def test_the_soak_skips_without_a_gpu(tmp_path) -> None:
    with pytest.raises(Skip, match="needs an NVIDIA GPU"):
        gpu_soak(Context("d49.e4", "cpu", True, tmp_path), GpuSoakParams())


def test_the_worker_cuts_windows_as_it_goes_and_counts_failures(monkeypatch) -> None:
    clock = itertools.count(0.0, 0.25)  # every perf_counter() call moves 0.25 s on
    monkeypatch.setattr(worker.time, "perf_counter", lambda: next(clock))
    calls = itertools.count()

    def request() -> None:
        if next(calls) % 4 == 3:
            raise RuntimeError("a failed request")

    fake_torch = SimpleNamespace(cuda=SimpleNamespace(memory_allocated=lambda: 2**20, memory_reserved=lambda: 2**21))
    wins = worker.windows(request, seconds=4.0, window_s=2.0, torch=fake_torch)
    # a request every 0.5 s of the fake clock (the 4th, 8th, ... raise); the second window also holds the request
    # begun 0.25 s before the end
    assert [(w["start_s"], w["requests"], w["errors"], w["ok_rps"]) for w in wins] == [
        (0.0, 4, 1, 1.5),
        (2.0, 5, 1, 2.0),
    ]
    assert all(w["p50_ms"] == w["p99_ms"] == 250.0 for w in wins)  # each successful request took one tick
    assert wins[0]["allocated_mib"] == 1.0 and wins[0]["reserved_mib"] == 2.0
    assert wins[0]["rss_mib"] > 0 and wins[0]["fds"] > 0


def _fake(monkeypatch, fake_nvml, rss_last: float) -> None:
    rows = [{"start_s": 10.0 * i, "requests": 100, "errors": 0, "p50_ms": 1.0, "p99_ms": 2.0, "ok_rps": 10.0,
             "allocated_mib": 50.0, "reserved_mib": 64.0, "rss_mib": 500.0, "fds": 12} for i in range(8)]  # fmt: skip
    rows[-1]["rss_mib"] = rss_last

    def fake_run(n, cfg, **_kw):
        return clients.ClientRun(1, 800, 0.0, 0.0, 0.0, [800], [{"windows": rows}], started_at=100.0)

    monkeypatch.setattr(clients, "run_clients", fake_run)
    fake_nvml([(101.0, 3000.0, 50.0), (500.0, 3000.0, 50.0)])


def test_a_steady_run_passes_every_check(tmp_path, monkeypatch, fake_nvml) -> None:
    _fake(monkeypatch, fake_nvml, rss_last=510.0)
    out = gpu_soak(Context("d49.e4", "cuda", True, tmp_path), GpuSoakParams(duration_s=80, window_s=10))
    verdict = {r[0]: r for r in out.tables[0].rows}
    assert {r[3] for r in verdict.values()} == {"PASS"}
    assert verdict["p99 drift (last quarter / first quarter)"][1] == 1.0
    assert out.notes[0].startswith("PASS: 800 requests")
    nvml = out.series[1].lines["GPU memory in use (NVML)"]
    assert nvml == [[1.0, 3000.0]], "only NVML's reads inside the run are plotted"


def test_rss_growing_past_its_threshold_fails_and_says_which_check(tmp_path, monkeypatch, fake_nvml) -> None:
    _fake(monkeypatch, fake_nvml, rss_last=700.0)
    out = gpu_soak(Context("d49.e4", "cuda", True, tmp_path), GpuSoakParams(duration_s=80, window_s=10))
    verdict = {r[0]: r for r in out.tables[0].rows}
    assert verdict["RSS growth, MiB"][1:] == [200.0, 64.0, "FAIL"]
    assert out.notes[0].endswith("failing: RSS growth, MiB")
