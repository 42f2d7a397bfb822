"""A minimal Prometheus HTTP API client: instant and range queries, exemplars, polling, reloads."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any


class PromError(RuntimeError):
    """A Prometheus API call failed; the message has the query and Prometheus' error."""


@dataclass
class Prom:
    """Prometheus at `url` (http://host:port)."""

    url: str

    def get(self, path: str, params: dict[str, Any] | None = None, timeout: float = 30) -> Any:
        q = f"?{urllib.parse.urlencode(params)}" if params else ""
        try:
            with urllib.request.urlopen(f"{self.url}{path}{q}", timeout=timeout) as r:
                body = json.loads(r.read())
        except urllib.error.HTTPError as exc:
            body = json.loads(exc.read() or b"{}")
        if body.get("status") != "success":
            raise PromError(f"{path} {params}: {body.get('errorType')}: {body.get('error')}")
        return body["data"]

    def query(self, expr: str, at: float | None = None) -> list[dict[str, Any]]:
        params: dict[str, Any] = {"query": expr}
        if at is not None:
            params["time"] = at
        return self.get("/api/v1/query", params)["result"]

    def value(self, expr: str) -> float | None:
        """The first sample's value of an instant query, or None when it returns nothing."""
        res = self.query(expr)
        return float(res[0]["value"][1]) if res else None

    def query_range(self, expr: str, start: float, end: float, step: float) -> list[tuple[float, float]]:
        """(time, value) points of the first series of a range query."""
        res = self.get("/api/v1/query_range", {"query": expr, "start": start, "end": end, "step": step})["result"]
        return [(float(t), float(v)) for t, v in res[0]["values"]] if res else []

    def wait_for(self, expr: str, timeout_s: float = 60, cond: Callable[[float], bool] = lambda v: True) -> float:
        """Poll until `expr` returns a sample whose value satisfies `cond`; its value. PromError on timeout."""
        deadline = time.monotonic() + timeout_s
        last: float | None = None
        while time.monotonic() < deadline:
            last = self.value(expr)
            if last is not None and cond(last):
                return last
            time.sleep(0.25)
        raise PromError(f"{expr!r}: no satisfying sample within {timeout_s} s (last value {last})")

    def reload(self) -> None:
        req = urllib.request.Request(f"{self.url}/-/reload", method="POST")
        with urllib.request.urlopen(req, timeout=30):
            pass

    def exemplars(self, expr: str, start: float, end: float) -> list[dict[str, Any]]:
        return self.get("/api/v1/query_exemplars", {"query": expr, "start": start, "end": end})
