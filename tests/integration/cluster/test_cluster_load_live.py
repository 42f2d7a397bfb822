"""The cluster runners' load paths against a real tritonserver (the local platform, as `lab run` starts it): the
paced version probe, the JSON inference used for accuracy, and `drive()` (the lab's load generator with its
timeline). Nothing is mocked; there is no mesh here, so the probe reads no version header."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from ailab.contract import Context
from ailab.local.platform import Platform
from ailab.runner import local_platform
from workloads.cluster import traffic
from workloads.cluster.experiments.mesh import infer_outputs
from workloads.cluster.load import drive, probe
from workloads.cluster.timeline import windows
from workloads.serving import harness
from workloads.serving.common import variant

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def triton(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    ctx = Context(
        experiment_id="test", device="cpu", quick=True, workdir=tmp_path_factory.mktemp("cl"), platform=local_platform
    )
    with harness.serve(ctx, [variant("mlp")], workdir=ctx.workdir / "triton", warm_requests=2) as srv:
        yield srv.address("http")


def test_probe_paces_requests_and_reads_no_version_without_a_mesh(triton: str) -> None:
    rows = probe(triton, "mlp", qps=20, duration_s=1.5)
    assert 25 <= len(rows) <= 31 and all(ok for *_, ok in rows)
    assert traffic.probe_counts(rows) == {"": len(rows)}
    sends = [r[0] for r in rows]
    assert sends[-1] < 1.5 and np.median(np.diff(sends)) == pytest.approx(0.05, abs=0.02)


def test_json_inference_matches_the_binary_client(triton: str) -> None:
    from workloads.models.mlp import sample_inputs
    from workloads.serving.client import Client

    x, _ = sample_inputs(16)
    with Client(triton, "http") as c:
        direct = c.infer("mlp", {"input": x})["logits"].argmax(axis=1).tolist()
    assert infer_outputs(triton, "mlp", x) == direct


def test_drive_keeps_the_timeline_the_analysis_reads(triton: str) -> None:
    res = drive(triton, "mlp", qps=50, duration_s=2.0, warmup_s=0.5)
    assert res.ok > 50 and res.timeline and res.spec["warmup_s"] == 0.5
    wins = [w for w in windows(res.timeline, 0.5, res.window_s) if w.requests]
    assert sum(w.requests for w in wins) == res.sent and all(w.p99_ms > 0 for w in wins)


def test_prom_client_against_a_real_prometheus(tmp_path: Path) -> None:
    """The cluster runners' Prometheus client (over the HTTP API, as through a port-forward) on the lab's local
    Prometheus: instant and range vectors, label maps, and Prometheus' own error for a bad expression."""
    import time

    from workloads.cluster.prom import Prom, PromError, by_label, scalar, series

    with Platform(
        services=["prometheus"],
        state_dir=tmp_path,
        free_ports=True,
        options={"prometheus.scrape": [], "prometheus.scrape_interval": "1s"},
    ) as p:
        prom = Prom(p.url("prometheus"))
        deadline = time.monotonic() + 30
        while not prom.query('up{job="prometheus"}') and time.monotonic() < deadline:
            time.sleep(0.5)  # the first sample appears a few seconds after start
        assert by_label(prom.query('up{job="prometheus"}'), "job") == {"prometheus": 1.0}
        assert scalar(prom.query("vector(2) * 21")) == 42.0 and scalar(prom.query("absent(up) == 2")) is None
        now = time.time()
        rng = series(prom.query_range('up{job="prometheus"}', now - 5, now, 1), "job")
        assert list(rng) == ["prometheus"] and all(v == 1.0 for _, v in rng["prometheus"])
        with pytest.raises(PromError, match=r"rate\(up\[: bad_data"):
            prom.query("rate(up[")
