"""The issue's targets, evaluated on one run's rows (ratios measured in the same run), as report notes."""

from __future__ import annotations

import math

from workloads.kernels.jsonl import Parsed

TARGETS = ("vector_add", "sgemm", "hgemm", "graphs")


def check(name: str, parsed: Parsed) -> str:
    """A sentence saying whether target `name` was met, with the measured ratio."""
    if name not in TARGETS:
        raise ValueError(f"target {name!r}: allowed values are {', '.join(TARGETS)}")
    return {"vector_add": _vector_add, "sgemm": _sgemm, "hgemm": _hgemm, "graphs": _graphs}[name](parsed)


def _verdict(ok: bool) -> str:
    return "MET" if ok else "NOT MET"


def _vector_add(p: Parsed) -> str:
    rows = p.rows(case="d08.e1")
    if not rows:
        return "target vector_add: no rows"
    n = max(r.get("N") for r in rows)
    best = max((r for r in rows if r.get("N") == n), key=lambda r: r.get("of D2D copy"))
    pct = best.get("of D2D copy")
    return (
        f"Target vector_add >= 90% of D2D copy bandwidth at N={n}: {_verdict(pct >= 90)} "
        f"({best.get('kernel')}: {pct:.1f}%, {best.get('bandwidth'):.0f} GB/s)."
    )


def _best_at(p: Parsed, unit: str, base: str, n: int) -> tuple[str, float] | None:
    """Best correct kernel of `unit` at N=n and its % of cuBLAS; rows that carry their own "of cuBLAS" (measured
    against the cuBLAS call with the same memory layout) use it, others are divided by the `base` row."""
    rows = [r for r in p.rows(case="sweep") if r.get("N") == n]
    ref = next((r.get("throughput") for r in rows if r.get("kernel") == base), None)
    mine = [r for r in rows if r.get("unit") == unit and not r.get("kernel").startswith("cuBLAS")]
    mine = [r for r in mine if math.isfinite(r.get("rel. error")) and r.get("rel. error") < 1e-2]
    if not ref or not mine:
        return None

    def pct(r) -> float:
        own = r.get("of cuBLAS")
        return own if own is not None and math.isfinite(own) else 100 * r.get("throughput") / ref

    best = max(mine, key=pct)
    return best.get("kernel"), pct(best)


def _sgemm(p: Parsed) -> str:
    n = 4096 if any(r.get("N") == 4096 for r in p.rows(case="sweep")) else max(r.get("N") for r in p.rows(case="sweep"))
    got = _best_at(p, "CUDA core", "cuBLAS SGEMM", n)
    if got is None:
        return "target sgemm: no rows"
    k, pct = got
    return (
        f"Target best FP32 SGEMM >= 70% of cuBLAS SGEMM at N={n}: {_verdict(pct >= 70)} ({k}: {pct:.1f}%; "
        f"stretch 85%: {_verdict(pct >= 85)})."
    )


def _hgemm(p: Parsed) -> str:
    n = 4096 if any(r.get("N") == 4096 for r in p.rows(case="sweep")) else max(r.get("N") for r in p.rows(case="sweep"))
    got = _best_at(p, "tensor core", "cuBLAS HGEMM (fp16 in, fp32 acc)", n)
    if got is None:
        return "target hgemm: no rows"
    k, pct = got
    if "wgmma" in k:
        stretch = f"stretch (wgmma >= 80%): {_verdict(pct >= 80)}"
    else:
        stretch = "stretch (wgmma >= 80%): NOT MET (no correct wgmma kernel in this run)"
    return (
        f"Target best tensor-core HGEMM >= 60% of cuBLAS at N={n}: {_verdict(pct >= 60)} ({k}: {pct:.1f}% of "
        f"cuBLAS on the same memory layout); {stretch}."
    )


def _graphs(p: Parsed) -> str:
    rows = p.rows(case="d37.e3")
    if not rows:
        return "target graphs: no rows"
    worst = min(rows, key=lambda r: r.get("speedup"))
    return (
        f"Target graph replay of {worst.get('kernels per pass')} small kernels >= 2x faster than plain launches: "
        f"{_verdict(worst.get('speedup') >= 2)} (lowest speedup {worst.get('speedup'):.2f}x at batch "
        f"{worst.get('batch')})."
    )
