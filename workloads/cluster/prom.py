"""Prometheus in the cluster (kube-prometheus-stack), queried over its HTTP API through a port-forward."""

from __future__ import annotations

import json
import urllib.parse
import urllib.request
from typing import Any


class PromError(RuntimeError):
    """Prometheus refused the query; the message carries the expression and Prometheus' error."""


def parse(body: dict[str, Any], expr: str) -> list[dict[str, Any]]:
    """`data.result` of a query answer; PromError naming the expression when the status is not success."""
    if body.get("status") != "success":
        raise PromError(f"{expr}: {body.get('errorType', '?')}: {body.get('error', body)}")
    return body["data"]["result"]


def scalar(result: list[dict[str, Any]]) -> float | None:
    """The value of a one-element instant vector (None when empty)."""
    return float(result[0]["value"][1]) if result else None


def by_label(result: list[dict[str, Any]], label: str) -> dict[str, float]:
    """Instant vector -> {label value: value}."""
    return {r["metric"].get(label, ""): float(r["value"][1]) for r in result}


def series(result: list[dict[str, Any]], label: str) -> dict[str, list[tuple[float, float]]]:
    """Range vector (`matrix`) -> {label value: [(t, value), ...]}."""
    return {r["metric"].get(label, ""): [(float(t), float(v)) for t, v in r["values"]] for r in result}


class Prom:
    def __init__(self, base_url: str, timeout_s: float = 10.0) -> None:
        self.base_url, self.timeout_s = base_url.rstrip("/"), timeout_s

    def _get(self, path: str, params: dict[str, Any], expr: str) -> list[dict[str, Any]]:
        url = f"{self.base_url}{path}?{urllib.parse.urlencode(params)}"
        try:
            with urllib.request.urlopen(url, timeout=self.timeout_s) as r:
                return parse(json.loads(r.read()), expr)
        except urllib.error.HTTPError as exc:  # 400/422 carry Prometheus' JSON error
            return parse(json.loads(exc.read() or b"{}"), expr)

    def query(self, expr: str, at: float | None = None) -> list[dict[str, Any]]:
        return self._get("/api/v1/query", {"query": expr, **({"time": at} if at else {})}, expr)

    def query_range(self, expr: str, start: float, end: float, step_s: float) -> list[dict[str, Any]]:
        return self._get("/api/v1/query_range", {"query": expr, "start": start, "end": end, "step": step_s}, expr)
