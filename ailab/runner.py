"""Resolve experiment selections, check needs, run experiments and store each result with provenance.

A run never loses a measurement: when the stored result of an experiment on this host class is `ok` and the new
attempt is skipped, failed, or a `--quick` run over a full-size one, the measured file stays and the attempt is
recorded under `.lab/attempts/` instead.
"""

from __future__ import annotations

import difflib
import importlib
import inspect
import re
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from ailab import host
from ailab.contract import Context, Output, Skip
from ailab.contract.params import ParamsError, validate
from ailab.contract.paths import repo_relative, state_dir, work_dir
from ailab.curriculum import Catalogue, Experiment, Need, catalogue
from ailab.curriculum.loader import runner_params_model
from ailab.results import provenance, save
from ailab.results.store import load_result, result_path

if TYPE_CHECKING:
    from ailab.local.pool import PlatformPool

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
    kept: Path | None = None  # the measured result that this (skipped/failed) attempt did not replace
    duration_s: float = 0.0


def parse_overrides(items: list[str]) -> dict[str, Any]:
    """`name=value` pairs (values read as YAML: 2, 0.5, grpc, [1, 2], {a: 1}) -> dict; ParamsError when malformed."""
    out: dict[str, Any] = {}
    for item in items:
        name, sep, raw = item.partition("=")
        name = name.strip()
        if not sep or not re.fullmatch(r"[A-Za-z_]\w*", name):
            raise ParamsError(f"--set {item!r}: expected name=value (e.g. duration_s=2 or qps=[100,200])")
        try:
            out[name] = yaml.safe_load(raw) if raw.strip() else ""
        except yaml.YAMLError as exc:
            raise ParamsError(f"--set {item!r}: the value is not valid YAML ({exc.__class__.__name__})") from None
    return out


def resolve_params(exp: Experiment, quick: bool, overrides: dict[str, Any] | None = None) -> tuple[Any, dict]:
    """(typed params, their plain dict with defaults filled) of a bound experiment; ParamsError if bad."""
    assert exp.binding is not None
    values = {**exp.binding.params, **(exp.binding.quick if quick else {})}
    model = runner_params_model(exp.binding.runner)
    values.update({k: v for k, v in (overrides or {}).items() if k in model.model_fields})
    try:
        typed = validate(model, values)
    except ParamsError as exc:
        raise ParamsError(f"{exp.id} ({exp.binding.runner}): {exc}") from None
    return typed, typed.model_dump(mode="json")


def check_overrides(exps: list[Experiment], overrides: dict[str, Any], quick: bool) -> None:
    """Every override names a parameter of at least one selected experiment, and every affected one accepts it."""
    if not overrides:
        return
    bound = [e for e in exps if e.binding is not None]
    fields: set[str] = set()
    for e in bound:
        fields |= set(runner_params_model(e.binding.runner).model_fields)  # type: ignore[union-attr]
    if unknown := sorted(set(overrides) - fields):
        allowed = ", ".join(sorted(fields)) or "none (no bound experiment selected)"
        raise ParamsError(
            f"--set {', '.join(unknown)}: no selected experiment has such a parameter (allowed: {allowed})"
        )
    for e in bound:
        resolve_params(e, quick, overrides)


def _attempt_path(exp_id: str, host_class: str) -> Path:
    return state_dir() / "attempts" / exp_id.split(".")[0] / f"{exp_id}.{host_class}.json"


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
    overrides: dict[str, Any] | None = None,
    derive_for: str | None = None,
    pool: PlatformPool | None = None,
) -> RunOutcome:
    """Run a single experiment and record ok / skipped (with reason) / failed (with error).

    `pool` (quick runs only; ignored otherwise) lends the experiment servers that an earlier experiment of the same
    `lab run` started, where the experiment allows it; the result's notes say which it got and from where.

    `derive_for` (a host class, e.g. h200) re-derives a derived result of that host class from that host class's
    stored sources, on whatever host this is: the host's needs are not checked (nothing is measured), and an output
    that is not derived (no `derived_from`) is refused as a failure, never stored under the other host class.
    """
    hclass = derive_for or provenance.host_class(prov, device, Need.multi_gpu in exp.effective_needs)
    record: dict[str, Any] = {
        "id": exp.id,
        "day": exp.day,
        "summary": exp.summary,
        "runner": exp.runner,
        "device": device,
        "host_class": hclass,
        "needs": [n.value for n in exp.effective_needs],
        "params": {},
        "provenance": {**prov, "started_utc": _now()},
    }
    status, reason = "ok", ""
    if exp.binding is None:
        # planned experiments leave no file: the report reads their state from the catalogue
        return RunOutcome(exp.id, "skipped", PLANNED, None)
    t0 = time.perf_counter()
    if derive_for is not None and derive_for != provenance.host_class(prov, device):
        record["rederived_on"] = prov.get("host")  # provenance is this host's; the rows are derive_for's
    if derive_for is None and device == "cuda" and not host.gpus():
        status, reason = "skipped", "asked for --device cuda, but this host has no CUDA GPU"
    # a runner that needs a cluster looks for it itself (workloads/cluster/run.py) and skips naming where it looked
    # (kubeconfig, --set kube_context=...) and what else the experiment needs; the host check only knows kubectl
    elif derive_for is None and (
        reasons := host.unmet([n for n in exp.effective_needs if n is not Need.cluster], device)
    ):
        status, reason = "skipped", "; ".join(reasons)
    else:
        typed, params = resolve_params(exp, quick, overrides)
        record["params"] = params
        record["quick"] = quick
        pooled = pool if quick and derive_for is None else None
        ctx = Context(
            experiment_id=exp.id,
            device=device,
            quick=quick,
            workdir=work_dir() / exp.id,
            log=log,
            platform=pooled.factory(exp.id) if pooled is not None else local_platform,
            result_of=lambda other: _stored(other, hclass),
            host_class=hclass,
        )
        ctx.workdir.mkdir(parents=True, exist_ok=True)
        try:
            func = load_runner(exp.binding.runner)
            out = func(ctx, typed) if _takes_params(func) else func(ctx)
            if not isinstance(out, Output):
                raise TypeError(f"runner {exp.binding.runner} returned {type(out).__name__}, expected Output")
            record.update(out.to_dict())
            if pooled is not None and (lent := pooled.reused(exp.id)):
                record["notes"] = [*record.get("notes", []), *lent]
            record["artifacts"] = {k: repo_relative(v) for k, v in record.get("artifacts", {}).items()}
            if out.derived_from:  # which run of each source these rows come from: `lab rederive --check` compares
                record["derived_sources"] = {s: _source_stamp(s, hclass) for s in out.derived_from}
            elif derive_for is not None:
                raise RuntimeError(
                    f"re-deriving for {derive_for}: {exp.binding.runner} returned a result that is not derived "
                    "(no derived_from), so it measured on this host; not stored under another host class"
                )
        except Skip as exc:
            status, reason = "skipped", str(exc)
        except Exception as exc:  # noqa: BLE001 - any failure is recorded and the run goes on
            status, reason = "failed", f"{type(exc).__name__}: {exc}"
            record["traceback"] = traceback.format_exc(limit=8)
    record["duration_s"] = round(time.perf_counter() - t0, 3)
    record["provenance"]["ended_utc"] = _now()
    record["status"], record["reason"] = status, reason
    if not store:
        return RunOutcome(exp.id, status, reason, None, duration_s=record["duration_s"])
    kept = None
    prev = _stored(exp.id, hclass)
    replaces_ok = prev is not None and prev.get("status") == "ok"
    if (replaces_ok and (status != "ok" or (quick and not prev.get("quick")))) or (derive_for and status != "ok"):
        # a skip, a failure or a quick (smoke-sized) run never replaces a measured full-size result; a re-derivation
        # for another host class stores only a derived result
        kept = result_path(exp.id, hclass) if replaces_ok else None
        path = save(record, path=_attempt_path(exp.id, hclass))
    else:
        path = save(record)
    return RunOutcome(exp.id, status, reason, path, kept, record["duration_s"])


def _takes_params(func: Callable[..., Any]) -> bool:
    return len(inspect.signature(func).parameters) == 2


def _source_stamp(exp_id: str, host_class: str) -> str | None:
    """What identifies the stored run of a source: its end time (None when it has no stored result)."""
    rec = _stored(exp_id, host_class)
    return rec.get("provenance", {}).get("ended_utc") if rec else None


def _stored(exp_id: str, host_class: str) -> dict[str, Any] | None:
    """The stored result of `exp_id` for `host_class`, or None (missing or unreadable)."""
    res = load_result(result_path(exp_id, host_class))
    return res.data if res is not None and res.error is None else None


def local_platform(
    services: list[str],
    state_dir: Path,
    options: dict[str, Any] | None = None,
    supervise: bool = False,
    reuse: bool = False,  # this factory starts fresh services every time; a quick run's pool may reuse
) -> Any:
    """The platform factory a runner's Context carries: real local processes on free ports."""
    from ailab.local.platform import Platform  # imported late: only runners that start services need it

    return Platform(services=services, state_dir=state_dir, free_ports=True, options=options, supervise=supervise)


def local_context(
    exp_id: str, workdir: Path, quick: bool = True, device: str = "cpu", pool: PlatformPool | None = None
) -> Context:
    """A runner's Context as `lab run` builds it for the local platform (tests drive runners through it); with a
    `pool`, as `lab run --quick` builds it (a quick context only)."""
    platform = pool.factory(exp_id) if pool is not None and quick else local_platform
    return Context(experiment_id=exp_id, device=device, quick=quick, workdir=workdir, platform=platform)


def default_device() -> str:
    return "cuda" if host.gpus() else "cpu"
