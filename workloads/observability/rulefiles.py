"""The generated Prometheus rule files, read as data: what the runners need of the control plane's rule generator
(dashboards/prometheus/rules/, written by `lab dashboards`) without importing it."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml

from ailab.contract.paths import REPO_ROOT

RULES_DIR = REPO_ROOT / "dashboards" / "prometheus" / "rules"
KUBERNETES_SD = REPO_ROOT / "dashboards" / "prometheus" / "kubernetes-sd.yaml"
GPU_DASHBOARD = REPO_ROOT / "dashboards" / "grafana" / "gpu.json"
_THRESHOLD = re.compile(r"^(?P<lhs>.*\S)\s*>\s*(?P<thr>[0-9][0-9.eE+-]*)$")
P99_ALERTS = ("TritonP99LatencyHigh", "TritonP99LatencyCritical")


def load(path: Path) -> dict[str, Any]:
    return yaml.safe_load(path.read_text()) or {}


def alert(name: str, path: Path = RULES_DIR / "alerts.yaml") -> dict[str, Any]:
    """The rule of alert `name` (alert, expr, for, labels, annotations); KeyError naming the file when absent."""
    for g in load(path).get("groups", []):
        for r in g.get("rules", []):
            if r.get("alert") == name:
                return r
    raise KeyError(f"{path}: no alert {name!r}")


def duration_s(text: str) -> float:
    """A Prometheus duration ('90s', '5m', '1h', '0m') in seconds."""
    units = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400}
    parts = re.findall(r"(\d+)(ms|s|m|h|d)", text)
    if not parts or "".join(n + u for n, u in parts) != text:
        raise ValueError(f"duration {text!r}: expected e.g. 90s, 5m, 1h")
    return sum(int(n) * units[u] for n, u in parts)


def thresholds(expr: str) -> list[float]:
    """The numbers each `or`-branch of an alert expression compares against with `>`."""
    out = []
    for branch in expr.split(" or "):
        m = _THRESHOLD.match(branch.strip())
        if m:
            out.append(float(m.group("thr")))
    return out


def set_p99_threshold(rules_file: Path, threshold_s: float) -> dict[str, float]:
    """Rewrite the P99 alerts of a rendered alert file to warn above `threshold_s`; critical keeps its ratio to the
    warning (as the generator sets it). Returns alert -> new threshold."""
    data = load(rules_file)
    rules = {r["alert"]: r for g in data["groups"] for r in g["rules"] if r.get("alert") in P99_ALERTS}
    missing = [a for a in P99_ALERTS if a not in rules]
    if missing:
        raise KeyError(f"{rules_file}: no alert {missing}")
    (warn,) = thresholds(rules["TritonP99LatencyHigh"]["expr"])
    new = {"TritonP99LatencyHigh": threshold_s}
    (crit,) = thresholds(rules["TritonP99LatencyCritical"]["expr"])
    new["TritonP99LatencyCritical"] = round(threshold_s * crit / warn, 6)
    for name, thr in new.items():
        m = _THRESHOLD.match(rules[name]["expr"].strip())
        rules[name]["expr"] = f"{m.group('lhs')} > {thr}"  # type: ignore[union-attr]
    rules_file.write_text(yaml.safe_dump(data, sort_keys=False, allow_unicode=True))
    return new
