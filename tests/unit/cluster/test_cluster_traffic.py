"""Traffic analysis (split against weights, rollback switch time) on recorded probe rows and a recorded Prometheus
answer, and the mesh object changes the runners make, applied to week 7's rendered VirtualService and EnvoyFilter."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import yaml

from workloads.cluster import prom, traffic

FIX = Path(__file__).with_name("fixtures")


def test_a_split_within_three_standard_deviations_is_fair() -> None:
    shares = traffic.split({"stable": 9040, "canary": 960}, {"stable": 90, "canary": 10})
    assert [s.version for s in shares] == ["canary", "stable"]
    assert shares[0].share == pytest.approx(0.096) and shares[0].weight == pytest.approx(0.1)
    assert shares[0].z == pytest.approx(-40 / 30) and traffic.fair(shares)


def test_an_ignored_weight_is_not_fair_and_a_missing_version_counts_zero() -> None:
    shares = traffic.split({"stable": 1000}, {"stable": 50, "canary": 50})
    assert not traffic.fair(shares) and shares[0].requests == 0
    assert math.isinf(traffic.split({"x": 3}, {"stable": 100})[1].z)  # responses from a version weighted 0
    with pytest.raises(ValueError, match="sum to more than 0"):
        traffic.split({}, {"a": 0})


def test_counts_from_a_recorded_istio_requests_vector() -> None:
    body = json.loads((FIX / "istio_requests_vector.json").read_text())
    res = prom.parse(body, "expr")
    assert traffic.counts_from_vector(res, "destination_version") == {"stable": 4482, "canary": 4517}
    assert prom.by_label(res, "response_code")["503"] == 3.2
    with pytest.raises(prom.PromError, match="bad_data"):
        prom.parse({"status": "error", "errorType": "bad_data", "error": "parse error"}, "rate(x[")


ROWS = [
    (0.0, "stable", 5.0, True),
    (0.5, "canary", 6.0, True),
    (1.0, "canary", 3.0, False),
    (1.5, "canary", 7.0, True),
    (2.0, "stable", 5.0, True),
    (2.5, "stable", 5.0, True),
]


def test_switch_time_is_until_the_last_response_from_another_version() -> None:
    assert traffic.probe_counts(ROWS) == {"stable": 3, "canary": 2}
    sw = traffic.switch_time(ROWS, 1.0, "stable")
    assert sw.drained_after_s == pytest.approx(0.507) and sw.other_after == 1 and sw.errors_after == 1
    assert not sw.stuck
    stuck = traffic.switch_time(ROWS[:4], 0.0, "stable")
    assert stuck.stuck and traffic.switch_time(ROWS, 2.0, "stable").drained_after_s is None


@pytest.fixture(scope="module")
def week07(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict]:
    from workloads.cluster.stack import StackView, render

    view = StackView.from_dir(7, render(7, tmp_path_factory.mktemp("w07")))
    return {m["kind"]: m for m in view.manifests if m["kind"] in ("VirtualService", "EnvoyFilter")}


def test_weights_and_version_headers_keep_the_route_settings(week07: dict[str, dict]) -> None:
    vs = week07["VirtualService"]["spec"]
    spec = traffic.routed(vs, {"stable": 50, "canary": 50}, header="x-ailab-version")
    route = spec["http"][0]
    assert [(d["destination"]["subset"], d["weight"]) for d in route["route"]] == [("stable", 50), ("canary", 50)]
    assert route["route"][1]["headers"] == {"response": {"set": {"x-ailab-version": "canary"}}}
    assert route["timeout"] == vs["http"][0]["timeout"] and route.get("mirror") == vs["http"][0].get("mirror")
    assert route["route"][0]["destination"]["host"] == vs["http"][0]["route"][0]["destination"]["host"]
    with pytest.raises(ValueError, match="sum to 100"):
        traffic.routed(vs, {"stable": 50, "canary": 40})


def test_mirroring_and_token_bucket_changes(week07: dict[str, dict]) -> None:
    m = traffic.mirrored(week07["VirtualService"]["spec"], "canary", 25)
    assert m["http"][0]["mirror"]["subset"] == "canary" and m["http"][0]["mirrorPercentage"] == {"value": 25.0}
    ef = traffic.with_token_bucket(week07["EnvoyFilter"]["spec"], 500)
    text = yaml.safe_dump(ef)
    assert "max_tokens: 500" in text and "tokens_per_fill: 500" in text
    assert yaml.safe_dump(week07["EnvoyFilter"]["spec"]) != text  # the original is not modified in place
