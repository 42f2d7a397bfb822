"""Derived results that no longer match their sources.

A derived result re-presents rows of other experiments' stored results (`derived_from`). When a source is measured
again, the derived file still shows the old run's rows until it is re-derived. Each derived result records which run
of each source it used (`derived_sources`: source id -> the source's `ended_utc`); a result written before that field
existed is judged by time (derived before its source ended = derived from an older run), except one labelled
derived after the fact (`relabelled`, tools/relabel_results.py): its rows were cut from the source's own run, which a
cache let end after it, so its time says nothing.

`lab rederive` re-runs the stale ones, for their own host class, sources before the results derived from them.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ailab.contract.paths import results_dir
from ailab.results.store import load_result


@dataclass(frozen=True)
class Stale:
    experiment_id: str
    host_class: str
    source: str
    why: str


def _ended(rec: dict[str, Any]) -> str:
    return rec.get("provenance", {}).get("ended_utc") or ""


def stored(root: Path | None = None) -> dict[tuple[str, str], dict[str, Any]]:
    """Every readable stored result: (experiment id, host class) -> record."""
    out: dict[tuple[str, str], dict[str, Any]] = {}
    for path in sorted((root or results_dir()).glob("d*/d*.json")):
        res = load_result(path)
        if res is not None and res.error is None:
            out[(res.id, res.host_class)] = res.data
    return out


def stale(root: Path | None = None) -> list[Stale]:
    """Every `ok` derived result whose rows are not those of its sources' stored runs, with why."""
    recs = stored(root)
    found: list[Stale] = []
    for (exp_id, hclass), rec in sorted(recs.items()):
        if rec.get("status") != "ok":
            continue
        used = rec.get("derived_sources")
        for src in rec.get("derived_from") or []:
            now = recs.get((src, hclass))
            if now is None or now.get("status") != "ok":
                found.append(Stale(exp_id, hclass, src, f"{src} has no measured {hclass} result any more"))
            elif used is not None and used.get(src) != _ended(now):
                why = f"derived from {src}'s run ended {used.get(src)}; stored run ended {_ended(now)}"
                found.append(Stale(exp_id, hclass, src, why))
            elif used is None and "relabelled" not in rec and _ended(now) > _ended(rec):
                found.append(
                    Stale(exp_id, hclass, src, f"derived {_ended(rec)}, before {src}'s stored run ended {_ended(now)}")
                )
    return found


def order(targets: set[tuple[str, str]], root: Path | None = None) -> list[tuple[str, str]]:
    """`targets` (id, host class), each after the results it is derived from (catalogue id order otherwise)."""
    recs = stored(root)

    def depth(key: tuple[str, str], seen: frozenset[tuple[str, str]] = frozenset()) -> int:
        rec = recs.get(key) or {}
        srcs = [(s, key[1]) for s in rec.get("derived_from") or [] if (s, key[1]) not in seen]
        return 1 + max((depth(s, seen | {key}) for s in srcs), default=-1)

    return sorted(targets, key=lambda k: (depth(k), k[1], _id_key(k[0])))


def _id_key(exp_id: str) -> tuple[int, int]:
    day, _, e = exp_id.partition(".e")
    return int(day.lstrip("d")), int(e or 0)


__all__ = ["Stale", "order", "stale", "stored"]
