"""Resolve experiment selections, check needs, run experiments and store each result with provenance."""

from __future__ import annotations

import difflib
import importlib
import re
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from ailab import host
from ailab.curriculum import Catalogue, Experiment, Need, catalogue
from ailab.experiment import Context, Output, Skip
from ailab.paths import work_dir
from ailab.results import provenance, save

PLANNED = "planned: no runner implemented in the lab yet"


class SelectionError(ValueError):
    """An unknown week, day or experiment id; the message lists what is allowed and the closest matches."""


def _closest(word: str, choices: list[str]) -> str:
    near = difflib.get_close_matches(word, choices, n=3, cutoff=0.5)
    return f"; did you mean {', '.join(near)}?" if near else ""


def resolve(selector: str, cat: Catalogue | None = None) -> list[Experiment]:
    """`week01`/`w1`, `d03`, `d03.e1` (comma-separated lists allowed) -> experiments in catalogue order."""
    cat = cat or catalogue()
    out: list[Experiment] = []
    for sel in [s.strip().lower() for s in selector.split(",") if s.strip()]:
        if m := re.fullmatch(r"(?:week|wk|w)(\d{1,2})", sel):
            n = int(m.group(1))
            if n not in cat.weeks:
                raise SelectionError(f"unknown week {sel!r} (week01–week{max(cat.weeks):02d})")
            out += [e for d in cat.week(n) for e in d.experiments]
        elif m := re.fullmatch(r"d(\d{1,2})", sel):
            n = int(m.group(1))
            if n not in cat.days:
                days = [f"d{k:02d}" for k in cat.days]
                raise SelectionError(f"unknown day {sel!r} (d01–d{max(cat.days):02d}){_closest(sel, days)}")
            out += cat.day(n).experiments
        elif re.fullmatch(r"d\d{1,2}\.e\d+", sel):
            norm = f"d{int(sel[1 : sel.index('.')]):02d}{sel[sel.index('.') :]}"
            if norm not in cat.experiments:
                raise SelectionError(
                    f"unknown experiment {sel!r} (ids are dNN.e1–dNN.e5){_closest(norm, list(cat.experiments))}"
                )
            out.append(cat.experiments[norm])
        else:
            raise SelectionError(f"cannot read selection {sel!r}: use weekNN, dNN or dNN.eK (e.g. week01, d03, d03.e1)")
    seen: set[str] = set()
    return [e for e in out if not (e.id in seen or seen.add(e.id))]


@dataclass(frozen=True)
class RunOutcome:
    experiment_id: str
    status: str  # ok | skipped | failed
    reason: str
    path: Path | None


def load_runner(ref: str) -> Callable[[Context], Output]:
    module, _, func = ref.partition(":")
    return getattr(importlib.import_module(module), func)


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def run_one(
    exp: Experiment,
    device: str,
    quick: bool,
    prov: dict[str, Any],
    store: bool = True,
    log: Callable[[str], None] = print,
) -> RunOutcome:
    """Run a single experiment and record ok / skipped (with reason) / failed (with error)."""
    record: dict[str, Any] = {
        "id": exp.id,
        "day": exp.day,
        "summary": exp.summary,
        "runner": exp.runner,
        "device": device,
        "host_class": provenance.host_class(prov, device, Need.multi_gpu in exp.effective_needs),
        "needs": [n.value for n in exp.effective_needs],
        "params": {},
        "provenance": {**prov, "started_utc": _now()},
    }
    status, reason = "ok", ""
    if exp.binding is None:
        # planned experiments leave no file: the report reads their state from the catalogue
        return RunOutcome(exp.id, "skipped", PLANNED, None)
    if reasons := host.unmet(exp.effective_needs, device):
        status, reason = "skipped", "; ".join(reasons)
    else:
        params = {**exp.binding.params, **(exp.binding.quick if quick else {})}
        record["params"] = params
        record["quick"] = quick
        ctx = Context(
            experiment_id=exp.id, params=params, device=device, quick=quick, workdir=work_dir() / exp.id, log=log
        )
        ctx.workdir.mkdir(parents=True, exist_ok=True)
        t0 = time.perf_counter()
        try:
            out = load_runner(exp.binding.runner)(ctx)
            if not isinstance(out, Output):
                raise TypeError(f"runner {exp.binding.runner} returned {type(out).__name__}, expected Output")
            record.update(out.to_dict())
        except Skip as exc:
            status, reason = "skipped", str(exc)
        except Exception as exc:  # noqa: BLE001 - any failure is recorded and the run goes on
            status, reason = "failed", f"{type(exc).__name__}: {exc}"
            record["traceback"] = traceback.format_exc(limit=8)
        record["duration_s"] = round(time.perf_counter() - t0, 3)
    record["provenance"]["ended_utc"] = _now()
    record["status"], record["reason"] = status, reason
    path = save(record) if store else None
    return RunOutcome(exp.id, status, reason, path)


def default_device() -> str:
    return "cuda" if host.gpus() else "cpu"
