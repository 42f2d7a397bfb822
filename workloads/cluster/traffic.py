"""Traffic between versions: does a weighted split hold, how fast does a rollback drain the canary. Pure.

Per-request versions come from the `x-ailab-version` response header the runner has the mesh add on each route
(probe rows: (send time s, version, latency ms, ok)); per-version totals from Istio's `istio_requests_total`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

ProbeRow = tuple[float, str, float, bool]
Z_LIMIT = 3.0  # a share within 3 standard errors of its weight counts as following the weight


@dataclass(frozen=True)
class Share:
    version: str
    requests: int
    share: float  # observed fraction
    weight: float  # configured fraction
    z: float  # (observed - expected count) / binomial standard deviation


def split(counts: dict[str, int], weights: dict[str, float]) -> list[Share]:
    """Observed shares against configured weights (percent or fractions), one row per version of either."""
    total_w = sum(weights.values())
    if total_w <= 0:
        raise ValueError(f"weights {weights}: must sum to more than 0")
    n = sum(counts.values())
    out = []
    for v in sorted(set(counts) | set(weights)):
        p, k = weights.get(v, 0) / total_w, counts.get(v, 0)
        sd = math.sqrt(n * p * (1 - p))
        z = (k - n * p) / sd if sd > 0 else (0.0 if k == n * p else math.inf)
        out.append(Share(v, k, k / n if n else math.nan, p, z))
    return out


def fair(shares: list[Share], z_limit: float = Z_LIMIT) -> bool:
    """Every version's count within `z_limit` binomial standard deviations of its weight."""
    return all(abs(s.z) <= z_limit for s in shares)


def counts_from_vector(result: list[dict[str, Any]], label: str) -> dict[str, int]:
    """A Prometheus instant vector (`data.result`) summed by `label`: {label value: rounded total}."""
    out: dict[str, float] = {}
    for item in result:
        key = item["metric"].get(label, "")
        out[key] = out.get(key, 0.0) + float(item["value"][1])
    return {k: round(v) for k, v in out.items()}


def probe_counts(rows: list[ProbeRow], since: float = 0.0, until: float = math.inf) -> dict[str, int]:
    """Successful probe responses per version sent in [since, until)."""
    out: dict[str, int] = {}
    for t, v, _, ok in rows:
        if ok and since <= t < until:
            out[v] = out.get(v, 0) + 1
    return out


@dataclass(frozen=True)
class Switch:
    drained_after_s: float | None  # from the command to the last response of another version (None: never sent one)
    other_after: int  # responses of other versions after the command
    errors_after: int  # failed requests after the command
    stuck: bool  # the last responses still came from another version


def switch_time(rows: list[ProbeRow], at: float, target: str) -> Switch:
    """After shifting all traffic to `target` at `at` (s, same clock as the rows): when did the others stop."""
    after = sorted(r for r in rows if r[0] >= at)
    others = [r for r in after if r[3] and r[1] != target]
    errors = sum(1 for r in after if not r[3])
    last_ok = [r for r in after if r[3]]
    stuck = bool(last_ok) and last_ok[-1][1] != target
    drained = (others[-1][0] + others[-1][2] / 1e3 - at) if others else None
    return Switch(drained, len(others), errors, stuck)


# --- what the runner changes in the mesh's objects (pure: spec in, spec out) -------------------------------------


def routed(vs_spec: dict[str, Any], weights: dict[str, int], header: str | None = None) -> dict[str, Any]:
    """A VirtualService spec with every HTTP route's destinations weighted `weights` (subset -> %), keeping the
    route's other settings (timeout, retries, mirror); each destination tags its responses `header: <subset>`."""
    if sum(weights.values()) != 100:
        raise ValueError(f"weights {weights}: must sum to 100")
    spec = {**vs_spec, "http": []}
    for route in vs_spec.get("http", []):
        dests = route.get("route", [])
        if not dests:
            spec["http"].append(route)
            continue
        template = dests[0]["destination"]
        new = []
        for subset, w in weights.items():
            d: dict[str, Any] = {"destination": {**template, "subset": subset}, "weight": w}
            if header:
                d["headers"] = {"response": {"set": {header: subset}}}
            new.append(d)
        spec["http"].append({**route, "route": new})
    return spec


def mirrored(vs_spec: dict[str, Any], subset: str, percent: float) -> dict[str, Any]:
    """A VirtualService spec whose HTTP routes mirror `percent` of requests to `subset`."""
    spec = {**vs_spec, "http": []}
    for route in vs_spec.get("http", []):
        host = route["route"][0]["destination"]["host"] if route.get("route") else None
        r = dict(route)
        if host:
            r["mirror"] = {"host": host, "subset": subset}
            r["mirrorPercentage"] = {"value": float(percent)}
        spec["http"].append(r)
    return spec


def with_token_bucket(obj: Any, qps: int) -> Any:
    """A copy of an EnvoyFilter spec with every local-rate-limit token bucket set to `qps` tokens per second."""
    if isinstance(obj, dict):
        if "token_bucket" in obj:
            return {**obj, "token_bucket": {"max_tokens": qps, "tokens_per_fill": qps, "fill_interval": "1s"}}
        return {k: with_token_bucket(v, qps) for k, v in obj.items()}
    if isinstance(obj, list):
        return [with_token_bucket(v, qps) for v in obj]
    return obj
