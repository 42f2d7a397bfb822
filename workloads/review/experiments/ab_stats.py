"""A/B statistics from the lab's stored v1/v2 measurements (derived: no new run).

- `ab_power` (d62.e3): statistical power against sample size for the differences the lab measured — the latency of
  v1 vs v2 behind the weighted router (d40.e2) and the accuracy of a reference model vs its variants (d36.e3: FP32
  vs INT8 calibrations; d61.e3: teacher vs students). Two-sided two-sample z-test (normal approximation), alpha
  and target power as parameters.
  Latency: the difference of medians is the effect; each version's spread is estimated from its percentiles as
  sigma = (p90 - p50) / z(0.9), which assumes normal latency (real latency is right-skewed, so this understates
  sigma in the tail; said in the notes). Accuracy: two proportions, pooled variance.
- `ab_table` (d62.e5): v1 vs v2 side by side from the weighted-routing runs (d40.e2 latency and throughput per
  concurrency, d40.e3 per routing phase) and the top-1 agreement of the two versions (d34.e1).
"""

from __future__ import annotations

import math
import re
from typing import Any

from pydantic import Field

from ailab.contract import Column, Context, Output, Params, Series, Table


class PowerParams(Params):
    latency_source: str = Field(default="d40.e2", description="result with a `latency` table: version, p50, p90 rows")
    accuracy_sources: list[str] = Field(
        default=["d36.e3", "d61.e3"],
        min_length=1,
        description="results with an accuracy column (%) per variant; the first row is the reference",
    )
    sample_sizes: list[int] = Field(
        default=[10, 30, 100, 300, 1000, 3000, 10000, 30000, 100000],
        min_length=2,
        description="requests (latency) or labelled samples (accuracy) per arm",
    )
    alpha: float = Field(default=0.05, gt=0, lt=1, description="two-sided significance level")
    power: float = Field(default=0.8, gt=0, lt=1, description="target power for the required sample size")


def _norm() -> Any:
    from scipy.stats import norm  # heavy import inside the runner (import rules)

    return norm


def z_power(effect: float, se: float, alpha: float) -> float:
    """Power of a two-sided z-test of a true difference `effect` whose estimate has standard error `se`."""
    norm = _norm()
    if se <= 0:
        return 1.0 if effect else alpha
    z = norm.ppf(1 - alpha / 2)
    shift = abs(effect) / se
    return float(norm.cdf(shift - z) + norm.cdf(-shift - z))


def n_per_arm(effect: float, sigma: float, alpha: float, power: float) -> float:
    """Samples per arm for a two-sample z-test (equal arms, common sigma): 2 (z_a + z_b)^2 sigma^2 / effect^2."""
    norm = _norm()
    if effect == 0:
        return math.inf
    return 2 * (norm.ppf(1 - alpha / 2) + norm.ppf(power)) ** 2 * sigma**2 / effect**2


def proportions_n(p1: float, p2: float, alpha: float, power: float) -> float:
    """Samples per arm to tell two proportions apart (pooled-variance normal approximation)."""
    norm = _norm()
    if p1 == p2:
        return math.inf
    pbar = (p1 + p2) / 2
    za, zb = norm.ppf(1 - alpha / 2), norm.ppf(power)
    num = za * math.sqrt(2 * pbar * (1 - pbar)) + zb * math.sqrt(p1 * (1 - p1) + p2 * (1 - p2))
    return num**2 / (p1 - p2) ** 2


def _table(rec: dict[str, Any], name: str) -> tuple[list[str], list[list[Any]]]:
    for t in rec.get("tables", []):
        if t["name"] == name:
            return [c["name"] for c in t["columns"]], t["rows"]
    raise ValueError(f"result {rec.get('id')} has no table {name!r}")


def _latency_pairs(rec: dict[str, Any]) -> list[tuple[str, dict[str, Any], dict[str, Any]]]:
    cols, rows = _table(rec, "latency")
    by: dict[str, dict[str, dict[str, Any]]] = {}
    for r in rows:
        d = dict(zip(cols, r, strict=False))
        by.setdefault(f"{d['weights']} c{d['concurrency']}", {})[d["version"]] = d
    return [(k, v["v1"], v["v2"]) for k, v in by.items() if "v1" in v and "v2" in v]


ACCURACY = re.compile(r"accuracy", re.I)


def _label(row: list[Any], upto: int) -> str:
    return " ".join(str(v) for v in row[:upto] if isinstance(v, str) and v not in ("", "-"))


def _round(v: float, digits: int = 4) -> float | None:
    return None if math.isinf(v) else round(v, digits)


def ab_power(ctx: Context, p: PowerParams) -> Output:
    """Power vs sample size for the measured v1/v2 latency difference and the measured accuracy differences."""
    norm = _norm()
    lat = ctx.derived_rows(p.latency_source)
    acc = {src: ctx.derived_rows(src) for src in p.accuracy_sources}
    z90 = float(norm.ppf(0.9))
    measured = Table.of(
        "latency: measured difference",
        [
            ("setting", "weights, concurrency"),
            ("v1 p50", "ms"),
            ("v2 p50", "ms"),
            ("difference", "ms"),
            ("v1 sigma est.", "ms"),
            ("v2 sigma est.", "ms"),
            ("v1 answers", ""),
            ("v2 answers", ""),
            ("power at the measured n", ""),
            (f"n per arm for {p.power:.0%} power", "requests"),
        ],
    )
    curve = Series("latency: power vs sample size", Column("requests per arm", ""), Column("power", ""), log_x=True)
    grid = Table.of("latency: power vs sample size", [("setting", "")] + [(f"n={n}", "power") for n in p.sample_sizes])
    for setting, v1, v2 in _latency_pairs(lat):
        diff = v2["p50"] - v1["p50"]
        s1, s2 = (v1["p90"] - v1["p50"]) / z90, (v2["p90"] - v2["p50"]) / z90
        se_measured = math.sqrt(s1**2 / v1["answers"] + s2**2 / v2["answers"])
        sigma = math.sqrt((s1**2 + s2**2) / 2)
        measured.add(
            setting,
            v1["p50"],
            v2["p50"],
            round(diff, 4),
            round(s1, 4),
            round(s2, 4),
            v1["answers"],
            v2["answers"],
            round(z_power(diff, se_measured, p.alpha), 4),
            _round(math.ceil(n_per_arm(diff, sigma, p.alpha, p.power)) if diff else math.inf),
        )
        powers = [z_power(diff, sigma * math.sqrt(2 / n), p.alpha) for n in p.sample_sizes]
        grid.add(setting, *(round(x, 4) for x in powers))
        for n, x in zip(p.sample_sizes, powers, strict=True):
            curve.point(setting, n, x)
    acc_t = Table.of(
        "accuracy: measured difference",
        [
            ("source", ""),
            ("reference", ""),
            ("variant", ""),
            ("reference accuracy", "%"),
            ("variant accuracy", "%"),
            ("difference", "pp"),
            (f"n per arm for {p.power:.0%} power", "samples"),
        ],
    )
    mde = Table.of(
        f"accuracy: smallest difference detectable with {p.power:.0%} power",
        [("samples per arm", ""), ("reference", ""), ("reference accuracy", "%"), ("detectable difference", "pp")],
    )
    mde_curve = Series(
        "accuracy: detectable difference vs sample size",
        Column("samples per arm", ""),
        Column("difference", "pp"),
        log_x=True,
        log_y=True,
    )
    za, zb = norm.ppf(1 - p.alpha / 2), norm.ppf(p.power)
    for src, rec in acc.items():
        table = next(t for t in rec["tables"] if any(ACCURACY.search(c["name"]) for c in t["columns"]))
        cols, rows = [c["name"] for c in table["columns"]], table["rows"]
        ai = next(i for i, c in enumerate(cols) if ACCURACY.search(c))
        ref, ref_label = rows[0], _label(rows[0], ai)
        seen = set()
        for r in rows[1:]:
            label = _label(r, ai)
            if not isinstance(r[ai], int | float) or label in seen:
                continue
            seen.add(label)
            n = proportions_n(ref[ai] / 100, r[ai] / 100, p.alpha, p.power)
            acc_t.add(
                src,
                ref_label,
                label,
                _round(ref[ai]),
                _round(r[ai]),
                round(r[ai] - ref[ai], 4),
                _round(math.ceil(n) if math.isfinite(n) else n),
            )
        p_ref = ref[ai] / 100
        for n in p.sample_sizes:
            d = 100 * (za + zb) * math.sqrt(2 * p_ref * (1 - p_ref) / n)
            mde.add(n, f"{src} {ref_label}", _round(ref[ai]), round(d, 4))
            mde_curve.point(f"{src} {ref_label}", n, d)
    notes = [
        f"Two-sided z-test, alpha {p.alpha}, target power {p.power}; scipy.stats.norm for the quantiles.",
        "Latency sigma is estimated from each version's p50 and p90 assuming normal latency; latency is right-"
        "skewed, so these powers are optimistic for tail metrics (a per-request sample would allow a bootstrap).",
        "An empty sample size means the measured difference is zero: no finite sample size detects it.",
        f"Sources: {p.latency_source} (v1/v2 latency behind the weighted router), {', '.join(p.accuracy_sources)} "
        "(accuracy of a reference model, the first row, and its variants on one held-out set; the set's size is not "
        "stored there, so the power at the size used is not computed).",
    ]
    return Output(
        tables=[measured, grid, acc_t, mde],
        series=[curve, mde_curve],
        notes=notes,
        derived_from=sorted({p.latency_source, *p.accuracy_sources}),
    )


class TableParams(Params):
    routing_source: str = Field(default="d40.e2", description="weighted-routing load test: `latency` table per version")
    phases_source: str = Field(
        default="d40.e3", description="routing-ratio switch: `phases` table with v1_/v2_ columns"
    )
    versions_source: str = Field(default="d34.e1", description="two versions in one repository: top-1 agreement")


def ab_table(ctx: Context, p: TableParams) -> Output:
    """v1 vs v2 on the performance and agreement metrics the lab measured, with v2 - v1."""
    t = Table.of(
        "v1 vs v2",
        [("metric", ""), ("setting", ""), ("unit", ""), ("v1", ""), ("v2", ""), ("v2 - v1", ""), ("source", "")],
    )
    routing = ctx.derived_rows(p.routing_source)
    units = {c["name"]: c.get("unit", "") for tb in routing["tables"] if tb["name"] == "latency" for c in tb["columns"]}
    for setting, v1, v2 in _latency_pairs(routing):
        for m in ("answers", "p50", "p90", "p99", "throughput"):
            t.add(m, setting, units.get(m, ""), v1[m], v2[m], round(v2[m] - v1[m], 4), p.routing_source)
    used = [p.routing_source]
    phases = ctx.result_of(p.phases_source)
    if phases and phases.get("status") == "ok":
        cols, rows = _table(phases, "phases")
        unit = {
            c["name"]: c.get("unit", "") for tb in phases["tables"] if tb["name"] == "phases" for c in tb["columns"]
        }
        for r in rows:
            d = dict(zip(cols, r, strict=False))
            for m in ("p50", "p99"):
                a, b = d.get(f"v1_{m}"), d.get(f"v2_{m}")
                if isinstance(a, int | float) and isinstance(b, int | float):
                    t.add(
                        m,
                        f"{d['phase']} ({d['weights']})",
                        unit.get(f"v1_{m}", ""),
                        a,
                        b,
                        round(b - a, 4),
                        p.phases_source,
                    )
        used.append(p.phases_source)
    versions = ctx.result_of(p.versions_source)
    notes = ["v2 - v1 is the only arithmetic here; every other cell is copied from the named result."]
    if versions and versions.get("status") == "ok":
        cols, rows = _table(versions, "policies")
        col = next((c for c in cols if c.startswith("top-1 agreement")), None)
        for r in rows if col else []:
            v = r[cols.index(col)]
            if isinstance(v, int | float):
                t.add("top-1 agreement of v1 and v2", r[0], "%", None, None, v, p.versions_source)
                used.append(p.versions_source)
                break
        notes.append(
            "No labelled accuracy of these two versions is stored; their top-1 agreement bounds how far "
            "their accuracies can differ (|difference| <= 100 - agreement)."
        )
    return Output(tables=[t], notes=notes, derived_from=sorted(set(used)))
